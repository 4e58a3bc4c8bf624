"""`inferfleet smoke --engine triton` against a real KServe v2 gRPC peer (kserve_peer.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.cli import main
from components.loadtest.smoke_triton import grpc_target
from loadtest.kserve_peer import KServePeer, PeerModel, RunningPeer, onnx_model_config, vllm_model_config


@pytest.fixture
def peer() -> Iterator[RunningPeer]:
    running = RunningPeer(KServePeer({"llm": PeerModel(vllm_model_config("llm"))}))
    yield running
    running.stop()


def smoke(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["smoke", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    return code, out.splitlines()


def test_vllm_backend_model_streams_text_and_passes(peer: RunningPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = smoke(capsys, peer.url, "--engine", "triton", "--max-tokens", "5")
    assert code == 0, lines
    assert lines[0] == f"ok   ready: Triton at {peer.url} is ready"
    assert lines[1] == "ok   model: llm is ready (backend vllm)"  # the only ready model, found in the index
    assert lines[2].startswith("ok   infer: 5 responses, first after ") and lines[2].endswith("'w0 w1 w2 w3 w4'")
    (request,) = peer.peer.requests
    assert {t.name: t.datatype for t in request.inputs} == {
        "text_input": "BYTES", "stream": "BOOL", "sampling_parameters": "BYTES", "exclude_input_in_output": "BOOL",
    }
    assert request.parameters["triton_enable_empty_final_response"].bool_param
    assert peer.peer.prompts == ["Hello! How are you today?"]


def test_other_backends_are_inferred_with_inputs_shaped_from_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    running = RunningPeer(KServePeer({"enc": PeerModel(onnx_model_config("enc")), "llm": PeerModel(vllm_model_config("llm"))}))
    try:
        code, lines = smoke(capsys, f"grpc://{running.url}", "--engine", "triton", "--model", "enc")
    finally:
        running.stop()
    assert code == 0, lines
    assert lines[1] == "ok   model: enc is ready (backend onnxruntime)"
    assert lines[2] == "ok   infer: 1 inputs -> OUTPUT0 [1, 4]"
    (request,) = running.peer.requests
    assert [(t.name, t.datatype, list(t.shape)) for t in request.inputs] == [("INPUT0", "FP32", [1, 4])]


def test_model_not_ready_fails_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    running = RunningPeer(KServePeer({"llm": PeerModel(vllm_model_config("llm"), ready=False)}))
    try:
        code, lines = smoke(capsys, running.url, "--engine", "triton", "--model", "llm")
    finally:
        running.stop()
    assert code == 1
    assert lines[1] == "FAIL model: model 'llm' is not ready"
    assert lines[-1] == f"smoke FAILED: triton at {running.url}"


def test_without_model_and_none_ready_it_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    running = RunningPeer(KServePeer({"llm": PeerModel(vllm_model_config("llm"), ready=False)}))
    try:
        code, lines = smoke(capsys, running.url, "--engine", "triton")
    finally:
        running.stop()
    assert (code, lines[1]) == (1, "FAIL model: no model is ready (repository: llm)")


def test_several_ready_models_need_a_choice(capsys: pytest.CaptureFixture[str]) -> None:
    running = RunningPeer(KServePeer({"a": PeerModel(vllm_model_config("a")), "b": PeerModel(onnx_model_config("b"))}))
    try:
        code, lines = smoke(capsys, running.url, "--engine", "triton")
    finally:
        running.stop()
    assert (code, lines[1]) == (1, "FAIL model: 2 models are ready (a, b): pick one with --model")


def test_unknown_model_is_reported_from_the_server(peer: RunningPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = smoke(capsys, peer.url, "--engine", "triton", "--model", "nope")
    assert code == 1
    assert lines[1] == f"FAIL model: Triton at {peer.url}: Request for unknown model: 'nope' is not found"


def test_server_not_ready_fails_first_step(capsys: pytest.CaptureFixture[str]) -> None:
    running = RunningPeer(KServePeer({"llm": PeerModel(vllm_model_config("llm"))}, server_ready=False))
    try:
        code, lines = smoke(capsys, running.url, "--engine", "triton")
    finally:
        running.stop()
    assert code == 1
    assert lines == [f"FAIL ready: Triton at {running.url} is up but not ready", f"smoke FAILED: triton at {running.url}"]


def test_server_down_is_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    running = RunningPeer(KServePeer({}))
    url = running.url
    running.stop()  # the port is now closed
    code, lines = smoke(capsys, url, "--engine", "triton", "--timeout", "5")
    assert code == 1
    assert lines[0].startswith(f"FAIL ready: Triton at {url}: unreachable (")


def test_stream_error_fails_the_inference(capsys: pytest.CaptureFixture[str]) -> None:
    running = RunningPeer(KServePeer({"llm": PeerModel(vllm_model_config("llm"), stream_error="CUDA out of memory")}))
    try:
        code, lines = smoke(capsys, running.url, "--engine", "triton")
    finally:
        running.stop()
    assert (code, lines[2]) == (1, "FAIL infer: llm: CUDA out of memory")


@pytest.mark.parametrize(
    ("url", "target"),
    [("grpc://h:8001", "h:8001"), ("http://h:8001/", "h:8001"), ("h:8001", "h:8001")],
)
def test_grpc_target_strips_scheme(url: str, target: str) -> None:
    assert grpc_target(url) == target
