"""A small KServe v2 gRPC inference server for the Triton smoke tests: a real protocol peer.

It implements, on tritonclient's own generated servicer (tritonclient.grpc.service_pb2_grpc), the
RPCs `inferfleet smoke --engine triton` uses: ServerReady, ModelReady, RepositoryIndex, ModelConfig,
ModelMetadata, ModelInfer and ModelStreamInfer. Models are described by real `ModelConfig` protos;
metadata is derived from them the way Triton derives it (TYPE_FP32 -> FP32, TYPE_STRING -> BYTES, a
leading -1 when the model batches). A model on the "vllm" backend streams one response per generated
word and honours `triton_enable_empty_final_response`, as Triton does for decoupled models.
Every request is recorded so tests can check what the client sent.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import numpy as np
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc


@dataclass
class PeerModel:
    config: model_config_pb2.ModelConfig
    ready: bool = True
    stream_error: str | None = None


@dataclass
class KServePeer(service_pb2_grpc.GRPCInferenceServiceServicer):
    models: dict[str, PeerModel]
    server_ready: bool = True
    requests: list[service_pb2.ModelInferRequest] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)

    # --- health and repository --------------------------------------------------------------

    def ServerReady(self, request: service_pb2.ServerReadyRequest, context: grpc.ServicerContext) -> service_pb2.ServerReadyResponse:  # noqa: N802
        return service_pb2.ServerReadyResponse(ready=self.server_ready)

    def ModelReady(self, request: service_pb2.ModelReadyRequest, context: grpc.ServicerContext) -> service_pb2.ModelReadyResponse:  # noqa: N802
        return service_pb2.ModelReadyResponse(ready=self._model(request.name, context).ready)

    def RepositoryIndex(self, request: service_pb2.RepositoryIndexRequest, context: grpc.ServicerContext) -> service_pb2.RepositoryIndexResponse:  # noqa: N802
        return service_pb2.RepositoryIndexResponse(models=[
            service_pb2.RepositoryIndexResponse.ModelIndex(name=name, version="1", state="READY" if m.ready else "UNAVAILABLE")
            for name, m in self.models.items()
        ])

    def ModelConfig(self, request: service_pb2.ModelConfigRequest, context: grpc.ServicerContext) -> service_pb2.ModelConfigResponse:  # noqa: N802
        return service_pb2.ModelConfigResponse(config=self._model(request.name, context).config)

    def ModelMetadata(self, request: service_pb2.ModelMetadataRequest, context: grpc.ServicerContext) -> service_pb2.ModelMetadataResponse:  # noqa: N802
        config = self._model(request.name, context).config
        batch = [-1] if config.max_batch_size > 0 else []
        tensor = service_pb2.ModelMetadataResponse.TensorMetadata
        return service_pb2.ModelMetadataResponse(
            name=request.name, versions=["1"], platform=config.backend,
            inputs=[tensor(name=t.name, datatype=_datatype(t.data_type), shape=batch + list(t.dims)) for t in config.input],
            outputs=[tensor(name=t.name, datatype=_datatype(t.data_type), shape=batch + list(t.dims)) for t in config.output],
        )

    # --- inference ----------------------------------------------------------------------------

    def ModelInfer(self, request: service_pb2.ModelInferRequest, context: grpc.ServicerContext) -> service_pb2.ModelInferResponse:  # noqa: N802
        """Checks every input against the config (name, type, size), answers each output with
        the first input plus one, in the output's shape: enough to prove the tensors went both ways."""
        self.requests.append(request)
        model = self._model(request.model_name, context)
        if not model.ready:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"Request for unknown model: '{request.model_name}' is not ready")
        declared = {t.name: t for t in model.config.input}
        if {t.name for t in request.inputs} != set(declared):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"expected inputs {sorted(declared)}")
        arrays = []
        for tensor, raw in zip(request.inputs, request.raw_input_contents, strict=True):
            dtype = np.dtype(_datatype(declared[tensor.name].data_type).lower().replace("fp", "float"))
            expected = int(np.prod(tensor.shape)) * dtype.itemsize
            if tensor.datatype != _datatype(declared[tensor.name].data_type) or len(raw) != expected:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"input {tensor.name}: wrong type or size")
            arrays.append(np.frombuffer(raw, dtype=dtype).reshape(tuple(tensor.shape)))
        response = service_pb2.ModelInferResponse(model_name=request.model_name, id=request.id)
        for output in model.config.output:
            dtype = np.dtype(_datatype(output.data_type).lower().replace("fp", "float"))
            value = (arrays[0] + 1).astype(dtype)
            response.outputs.add(name=output.name, datatype=_datatype(output.data_type), shape=list(value.shape))
            response.raw_output_contents.append(value.tobytes())
        return response

    def ModelStreamInfer(  # noqa: N802
        self, request_iterator: Iterator[service_pb2.ModelInferRequest], context: grpc.ServicerContext
    ) -> Iterator[service_pb2.ModelStreamInferResponse]:
        for request in request_iterator:
            self.requests.append(request)
            model = self._model(request.model_name, context)
            if model.stream_error:
                yield service_pb2.ModelStreamInferResponse(error_message=model.stream_error)
                continue
            inputs = {t.name: raw for t, raw in zip(request.inputs, request.raw_input_contents, strict=True)}
            self.prompts.append(_bytes_elements(inputs["text_input"])[0].decode())
            sampling = json.loads(_bytes_elements(inputs["sampling_parameters"])[0]) if "sampling_parameters" in inputs else {}
            words = [f"w{i}" for i in range(int(sampling.get("max_tokens", 4)))]
            empty_final = request.parameters["triton_enable_empty_final_response"].bool_param
            for i, word in enumerate(words):
                last = i == len(words) - 1 and not empty_final
                yield _text_response(request, f" {word}" if i else word, final=last)
            if empty_final:
                response = service_pb2.ModelInferResponse(model_name=request.model_name, id=request.id)
                response.parameters["triton_final_response"].bool_param = True
                yield service_pb2.ModelStreamInferResponse(infer_response=response)

    def _model(self, name: str, context: grpc.ServicerContext) -> PeerModel:
        if name not in self.models:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Request for unknown model: '{name}' is not found")
        return self.models[name]


def _datatype(data_type: int) -> str:
    name = model_config_pb2.DataType.Name(data_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def _bytes_elements(raw: bytes) -> list[bytes]:
    """KServe v2 BYTES tensors: each element is a 4-byte little-endian length, then the bytes."""
    out, offset = [], 0
    while offset < len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        out.append(raw[offset + 4 : offset + 4 + size])
        offset += 4 + size
    return out


def _text_response(request: service_pb2.ModelInferRequest, text: str, final: bool) -> service_pb2.ModelStreamInferResponse:
    response = service_pb2.ModelInferResponse(model_name=request.model_name, id=request.id)
    response.outputs.add(name="text_output", datatype="BYTES", shape=[1])
    encoded = text.encode()
    response.raw_output_contents.append(struct.pack("<I", len(encoded)) + encoded)
    response.parameters["triton_final_response"].bool_param = final
    return service_pb2.ModelStreamInferResponse(infer_response=response)


def vllm_model_config(name: str) -> model_config_pb2.ModelConfig:
    """The config Triton's vLLM backend model carries (inputs and outputs as its docs list them)."""
    config = model_config_pb2.ModelConfig(name=name, backend="vllm", max_batch_size=0)
    config.model_transaction_policy.decoupled = True
    for input_name, data_type, optional in (
        ("text_input", model_config_pb2.TYPE_STRING, False),
        ("stream", model_config_pb2.TYPE_BOOL, True),
        ("sampling_parameters", model_config_pb2.TYPE_STRING, True),
        ("exclude_input_in_output", model_config_pb2.TYPE_BOOL, True),
    ):
        config.input.add(name=input_name, data_type=data_type, dims=[1], optional=optional)
    config.output.add(name="text_output", data_type=model_config_pb2.TYPE_STRING, dims=[-1])
    return config


def onnx_model_config(name: str) -> model_config_pb2.ModelConfig:
    """A batching ONNX encoder: FP32 [4] in, FP32 [4] out."""
    config = model_config_pb2.ModelConfig(name=name, backend="onnxruntime", max_batch_size=8)
    config.input.add(name="INPUT0", data_type=model_config_pb2.TYPE_FP32, dims=[4])
    config.output.add(name="OUTPUT0", data_type=model_config_pb2.TYPE_FP32, dims=[4])
    return config


class RunningPeer:
    """The peer on a free loopback port, in a grpc.server; `stop()` takes it down."""

    def __init__(self, peer: KServePeer) -> None:
        self.peer = peer
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(peer, self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop(grace=None)
