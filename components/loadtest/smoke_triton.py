"""Smoke checks for NVIDIA Triton over its KServe v2 gRPC API, through tritonclient.

ready (server) -> model (named, or the only ready one in the repository index) -> model ready ->
one inference. A model on Triton's vLLM backend (config `backend: "vllm"`) gets what that backend
takes: `text_input`, `stream` and a JSON `sampling_parameters`, sent over the bidirectional stream,
with responses read until Triton's final-response flag. Any other model is inferred once with inputs
built from its metadata (every dynamic dimension 1, zeros, or a short string for BYTES), and every
output the metadata lists must come back.
"""

from __future__ import annotations

import json
import queue
import time
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException, triton_to_np_dtype

from components.loadtest.errors import LoadTestError
from components.loadtest.smoke import Checks

SMOKE_PROMPT = "Hello! How are you today?"
FINAL = "triton_final_response"


def grpc_target(url: str) -> str:
    """`grpc://host:port`, `http://host:port` or `host:port` -> `host:port` (tritonclient's form)."""
    target = url.split("://", 1)[1] if "://" in url else url
    return target.rstrip("/")


def smoke_triton(checks: Checks, url: str, model: str | None, timeout_s: float, max_tokens: int) -> None:
    """Run Triton's checks into `checks`, stopping at the first failure."""
    target = grpc_target(url)
    client = grpcclient.InferenceServerClient(target)
    try:
        _run(checks, client, target, model, timeout_s, max_tokens)
    finally:
        client.close()


def _run(
    checks: Checks, client: grpcclient.InferenceServerClient, target: str, model: str | None,
    timeout_s: float, max_tokens: int,
) -> None:
    step = "ready"
    try:
        if not _call(client.is_server_ready, target, client_timeout=timeout_s):
            raise LoadTestError(f"Triton at {target} is up but not ready")
        checks.passed(step, f"Triton at {target} is ready")
        step = "model"
        name = model or _only_ready_model(client, target, timeout_s)
        if not _call(client.is_model_ready, target, name, client_timeout=timeout_s):
            raise LoadTestError(f"model {name!r} is not ready")
        config = _call(client.get_model_config, target, name, client_timeout=timeout_s).config
        backend = config.backend or config.platform or "unknown"
        checks.passed(step, f"{name} is ready (backend {backend})")
        step = "infer"
        if config.backend == "vllm":
            detail = _generate(client, target, name, config, timeout_s, max_tokens)
        else:
            detail = _infer(client, target, name, timeout_s)
        checks.passed(step, detail)
    except LoadTestError as error:
        checks.failure(step, error)


def _call(method: Any, target: str, *args: Any, **kwargs: Any) -> Any:
    """A tritonclient call with its exception turned into a one-line reason."""
    try:
        return method(*args, **kwargs)
    except InferenceServerException as error:
        raise LoadTestError(f"Triton at {target}: {_reason(error)}") from None


def _reason(error: InferenceServerException) -> str:
    message = error.message() or str(error)
    status = error.status()
    if status == "StatusCode.UNAVAILABLE":
        return f"unreachable ({message.splitlines()[0]})"
    if status == "StatusCode.DEADLINE_EXCEEDED":
        return "timed out"
    return message.splitlines()[0] if message else str(status)


def _only_ready_model(client: grpcclient.InferenceServerClient, target: str, timeout_s: float) -> str:
    index = _call(client.get_model_repository_index, target, client_timeout=timeout_s)
    ready = sorted({m.name for m in index.models if m.state == "READY"})
    if len(ready) == 1:
        return ready[0]
    if not ready:
        listed = ", ".join(sorted({m.name for m in index.models})) or "none"
        raise LoadTestError(f"no model is ready (repository: {listed})")
    raise LoadTestError(f"{len(ready)} models are ready ({', '.join(ready)}): pick one with --model")


def _generate(
    client: grpcclient.InferenceServerClient, target: str, model: str, config: Any, timeout_s: float, max_tokens: int
) -> str:
    """One streamed generation on the vLLM backend; the text must be non-empty and the stream final."""
    declared = {tensor.name for tensor in config.input}
    inputs = [_tensor("text_input", np.array([SMOKE_PROMPT.encode()], dtype=np.object_), "BYTES")]
    if "stream" in declared:
        inputs.append(_tensor("stream", np.array([True]), "BOOL"))
    if "sampling_parameters" in declared:
        parameters = json.dumps({"max_tokens": max_tokens, "temperature": 0})
        inputs.append(_tensor("sampling_parameters", np.array([parameters.encode()], dtype=np.object_), "BYTES"))
    if "exclude_input_in_output" in declared:
        inputs.append(_tensor("exclude_input_in_output", np.array([True]), "BOOL"))
    responses: queue.Queue[tuple[Any, Any]] = queue.Queue()
    start = time.perf_counter()
    try:
        client.start_stream(callback=lambda result, error: responses.put((result, error)), stream_timeout=timeout_s)
    except InferenceServerException as error:
        raise LoadTestError(f"Triton at {target}: {_reason(error)}") from None
    try:
        _call(client.async_stream_infer, target, model, inputs, request_id="inferfleet-smoke",
              outputs=[grpcclient.InferRequestedOutput("text_output")], enable_empty_final_response=True)
        text, chunks, first = "", 0, None
        deadline = start + timeout_s
        while True:
            try:
                result, error = responses.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                raise LoadTestError(f"no final response from {model} within {timeout_s:g} s") from None
            if error is not None:
                raise LoadTestError(f"{model}: {_reason(error)}")
            output = result.as_numpy("text_output")
            if output is not None and output.size:
                piece = b"".join(item if isinstance(item, bytes) else str(item).encode() for item in output.flat)
                text += piece.decode(errors="replace")
                chunks += 1
                first = first or time.perf_counter()
            if result.get_response().parameters[FINAL].bool_param:
                break
    finally:
        client.stop_stream()
    if not text:
        raise LoadTestError(f"empty stream: {model} returned no text")
    return f"{chunks} responses, first after {(first - start) * 1000:.0f} ms: {text[:60]!r}"


def _infer(client: grpcclient.InferenceServerClient, target: str, model: str, timeout_s: float) -> str:
    """One ModelInfer with inputs shaped from the model's metadata; every declared output must return."""
    metadata = _call(client.get_model_metadata, target, model, client_timeout=timeout_s)
    inputs = []
    for spec in metadata.inputs:
        shape = [1 if dim < 0 else dim for dim in spec.shape]
        if spec.datatype == "BYTES":
            data = np.full(shape, b"inferfleet", dtype=np.object_)
        else:
            dtype = triton_to_np_dtype(spec.datatype)
            if dtype is None:
                raise LoadTestError(f"input {spec.name}: datatype {spec.datatype} is not supported by the smoke test")
            data = np.zeros(shape, dtype=dtype)
        inputs.append(_tensor(spec.name, data, spec.datatype))
    outputs = [grpcclient.InferRequestedOutput(spec.name) for spec in metadata.outputs]
    result = _call(client.infer, target, model, inputs, outputs=outputs, client_timeout=timeout_s)
    missing = [spec.name for spec in metadata.outputs if result.as_numpy(spec.name) is None]
    if missing:
        raise LoadTestError(f"{model} answered without outputs {', '.join(missing)}")
    described = ", ".join(f"{spec.name} {list(result.as_numpy(spec.name).shape)}" for spec in metadata.outputs)
    return f"{len(inputs)} inputs -> {described or 'no outputs declared'}"


def _tensor(name: str, data: np.ndarray, datatype: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, list(data.shape), datatype)
    tensor.set_data_from_numpy(data)
    return tensor
