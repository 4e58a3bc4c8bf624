"""Running the pinned vLLM release (its CPU build, in .venv-vllm) from the main venv's tests.

Three things live here so that every e2e test does them the same way:

- finding .venv-vllm, and the skip-or-fail rule when it is missing (a skip in CI would hide a
  broken set-up, so with CI=true the test fails instead);
- `parse_with_real_vllm`: vLLM's own argument parser and config validation on argument vectors;
- `cpu_args`: the one place where the container arguments the manifests generate are changed so
  a CPU-only machine can serve them. Every changed flag is in `CPU_FLAG_RULES` with its reason;
  every other flag passes through unchanged, so the real server still judges it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, NotRequired, TypedDict

from components.catalog import load_catalog
from components.manifests.placement import replica_sets
from components.manifests.vllm import vllm_args
from components.planner import plan_stack
from components.spec.models import ModelArchitecture
from components.stack import load_stack
from tests.tooling import missing_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
CHECK_SCRIPT = Path(__file__).with_name("check_vllm_args.py")
TINY_MODEL_SCRIPT = Path(__file__).with_name("tiny_model.py")
# Written by scripts/vllm_cpu_venv.sh only after a complete, importable install.
STAMP_NAME = ".inferfleet-stamp"
# Longest sequence the CPU run serves: within the tiny model's positions, and small enough
# that the KV cache in VLLM_CPU_KVCACHE_SPACE holds many sequences.
CPU_MAX_MODEL_LEN = 1024
LOOPBACK = "127.0.0.1"


def vllm_venv() -> Path:
    """The venv scripts/vllm_cpu_venv.sh builds (same VLLM_VENV override as the script)."""
    return REPO_ROOT / os.environ.get("VLLM_VENV", ".venv-vllm")


def vllm_python() -> Path:
    """.venv-vllm's interpreter; skips the calling test when the venv is missing or incomplete.

    Under CI=true it fails instead: CI builds the venv (`make e2e`), so a missing one is a bug.
    """
    venv = vllm_venv()
    python = venv / "bin" / "python"
    if python.exists() and (venv / STAMP_NAME).exists():
        return python
    missing_tool(f"{venv} is missing or incomplete: build it with scripts/vllm_cpu_venv.sh (make e2e does)")


# --- vLLM's own parser -----------------------------------------------------------------------


class VllmCheck(TypedDict):
    """One vector for check_vllm_args.py; with `hf_config` vLLM also builds its engine config."""

    args: list[str]
    hf_config: NotRequired[dict[str, Any]]


class VllmArgsResult(TypedDict):
    ok: bool
    error: str | None
    stage: str  # the last stage reached: parse, serve-args, engine-args or engine-config


def parse_with_real_vllm(
    vectors: Sequence[Sequence[str] | VllmCheck], timeout_s: float = 900
) -> list[VllmArgsResult]:
    """Parse each argument vector with the pinned vLLM's real server parser, in .venv-vllm.

    A plain vector goes through the `vllm serve` parser, its serve-argument checks and
    `AsyncEngineArgs.from_cli_args`. A `VllmCheck` with `hf_config` (see `standin_hf_config`)
    goes on through `create_engine_config`, vLLM's whole config validation (TP divides the
    heads, lengths fit the model, ...), with that config.json standing in for the weights.
    One process for all vectors: importing vLLM takes most of the time.
    """
    payload = [v if isinstance(v, dict) else list(v) for v in vectors]
    done = subprocess.run(
        [str(vllm_python()), str(CHECK_SCRIPT)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=vllm_env(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"{CHECK_SCRIPT.name} exited {done.returncode}:\n{done.stderr[-4000:]}")
    results: list[VllmArgsResult] = json.loads(done.stdout)
    assert len(results) == len(payload), (len(results), len(payload))
    return results


def real_vllm_options() -> dict[str, str]:
    """Every option string of the real parser -> its arity ('flag', 'one' or 'many')."""
    done = subprocess.run(
        [str(vllm_python()), str(CHECK_SCRIPT), "--options"],
        capture_output=True,
        text=True,
        timeout=600,
        env=vllm_env(),
        check=True,
    )
    return json.loads(done.stdout)


@dataclass(frozen=True)
class GeneratedVector:
    """The container arguments the manifests give one vLLM replica set, and its model's shape."""

    where: str  # stack file and replica set, for failure messages
    args: list[str]
    architecture: ModelArchitecture


def generated_vllm_vectors() -> list[GeneratedVector]:
    """`vllm_args` of every vLLM replica set of every stack in stacks/, as the pods get them."""
    catalog = load_catalog()
    vectors = []
    for path in sorted((REPO_ROOT / "stacks").glob("*.yaml")):
        spec = load_stack(path, catalog).spec
        plan = plan_stack(spec, catalog)
        for service in spec.services:
            if service.engine != "vllm":
                continue
            architecture = catalog.architecture_for(service.model)
            assert architecture is not None, service.name
            for replica_set in replica_sets(service, spec, plan):
                where = f"{path.relative_to(REPO_ROOT)}: {replica_set.name}"
                vectors.append(GeneratedVector(where, vllm_args(replica_set, catalog), architecture))
    return vectors


def standin_hf_config(arch: ModelArchitecture) -> dict[str, Any]:
    """A weightless config.json with a catalog architecture's shape, for `create_engine_config`.

    Dense models are described as Llama and MoE models as Mixtral: vLLM's shape checks read only
    the fields set here, so the stand-in needs no weights and no tokenizer.
    """
    if arch.kind != "decoder":
        raise ValueError(f"no stand-in for a {arch.kind} model: vLLM pools encoders with other configs")
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": arch.hidden_size,
        "intermediate_size": arch.intermediate_size or 4 * arch.hidden_size,
        "num_hidden_layers": arch.layers,
        "num_attention_heads": arch.attention_heads,
        "num_key_value_heads": arch.kv_heads,
        "head_dim": arch.head_dimension,
        "vocab_size": arch.vocab_size,
        "max_position_embeddings": arch.context_length,
        "rms_norm_eps": 1e-5,
        "torch_dtype": "bfloat16",
        "tie_word_embeddings": False,
    }
    if arch.experts:
        config |= {
            "architectures": ["MixtralForCausalLM"],
            "model_type": "mixtral",
            "num_local_experts": arch.experts,
            "num_experts_per_tok": arch.active_experts,
        }
    return config


def vllm_env(**extra: str) -> dict[str, str]:
    """Environment for .venv-vllm processes: no hub look-ups (nothing can be downloaded here)."""
    return dict(os.environ) | {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    } | extra


# --- GPU-only flags mapped out for a CPU run ----------------------------------------------------


@dataclass(frozen=True)
class Drop:
    """Remove the flag (and its values); with `prefix`, only when its value starts with it."""

    prefix: str = ""


@dataclass(frozen=True)
class SetTo:
    value: str


@dataclass(frozen=True)
class CapAt:
    limit: int


@dataclass(frozen=True)
class FromRun:
    """A value only the run knows: where the tiny model is, which port is free."""

    field: Literal["model_dir", "port"]


Action = Drop | SetTo | CapAt | FromRun
Arity = Literal["flag", "one", "many"]


class CpuRule(NamedTuple):
    action: Action
    reason: str
    arity: Arity = "one"


_ONE_PROCESS = "one CPU process here; the real value is checked by vLLM's parser in test_vllm_args"
_MULTI_NODE = "a multi-node or multi-device launch; the CPU run is one local process"
_CUDA_GRAPHS = "CUDA graphs exist only on NVIDIA GPUs"

# Flag (every alias vLLM accepts) -> what a CPU run does with it, and why.
CPU_FLAG_RULES: dict[str, CpuRule] = {
    "--model": CpuRule(FromRun("model_dir"), "no real weights here: serve the tiny model the test writes"),
    "--tokenizer": CpuRule(FromRun("model_dir"), "the tiny model carries its own tokenizer"),
    "--load-format": CpuRule(Drop(), "the tiny model is plain safetensors on local disk (no S3 streaming)"),
    "--port": CpuRule(FromRun("port"), "a free port, so runs on one machine do not collide"),
    "--host": CpuRule(SetTo(LOOPBACK), "tests listen on loopback only"),
    "--max-model-len": CpuRule(CapAt(CPU_MAX_MODEL_LEN), "the tiny model's positions and a small CPU KV cache"),
    "--tensor-parallel-size": CpuRule(SetTo("1"), _ONE_PROCESS),
    "-tp": CpuRule(SetTo("1"), _ONE_PROCESS),
    "--pipeline-parallel-size": CpuRule(SetTo("1"), _ONE_PROCESS),
    "-pp": CpuRule(SetTo("1"), _ONE_PROCESS),
    "--data-parallel-size": CpuRule(SetTo("1"), _ONE_PROCESS),
    "-dp": CpuRule(SetTo("1"), _ONE_PROCESS),
    "--decode-context-parallel-size": CpuRule(SetTo("1"), _ONE_PROCESS),
    "-dcp": CpuRule(SetTo("1"), _ONE_PROCESS),
    "--prefill-context-parallel-size": CpuRule(SetTo("1"), _ONE_PROCESS),
    "-pcp": CpuRule(SetTo("1"), _ONE_PROCESS),
    "--enable-expert-parallel": CpuRule(Drop(), "expert parallelism shards MoE experts over GPUs", "flag"),
    "-ep": CpuRule(Drop(), "expert parallelism shards MoE experts over GPUs", "flag"),
    "--distributed-executor-backend": CpuRule(Drop(), _MULTI_NODE),
    "--nnodes": CpuRule(Drop(), _MULTI_NODE),
    "-n": CpuRule(Drop(), _MULTI_NODE),
    "--node-rank": CpuRule(Drop(), _MULTI_NODE),
    "-r": CpuRule(Drop(), _MULTI_NODE),
    "--gpu-memory-utilization": CpuRule(Drop(), "the CPU backend sizes its KV cache by VLLM_CPU_KVCACHE_SPACE"),
    "--device-memory-utilization": CpuRule(Drop(), "the CPU backend sizes its KV cache by VLLM_CPU_KVCACHE_SPACE"),
    "--num-gpu-blocks-override": CpuRule(Drop(), "a GPU KV block count; the CPU cache is sized in GiB"),
    "--kv-cache-dtype": CpuRule(Drop(prefix="fp8"), "FP8 KV cache needs GPU kernels; CPU keeps the model dtype"),
    "--quantization": CpuRule(Drop(), "the tiny model is unquantized bf16; methods need their own checkpoints"),
    "-q": CpuRule(Drop(), "the tiny model is unquantized bf16; methods need their own checkpoints"),
    "--cudagraph-capture-sizes": CpuRule(Drop(), _CUDA_GRAPHS, "many"),
    "--max-cudagraph-capture-size": CpuRule(Drop(), _CUDA_GRAPHS),
}


@dataclass(frozen=True)
class CpuRun:
    model_dir: str
    port: int


def cpu_args(args: Sequence[str], *, model_dir: str | Path, port: int) -> list[str]:
    """The container's vLLM arguments as a CPU run of the tiny model takes them.

    Only the flags in `CPU_FLAG_RULES` change (in `--flag value` or `--flag=value` form, dashes
    or underscores); `--model`, `--port` and `--host` are added when absent. A leading positional
    model tag (`vllm serve MODEL` form) is refused: the manifests pass `--model`, and a flag's
    value cannot be told from a positional without the full parser.
    """
    run = CpuRun(str(model_dir), port)
    out: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(args):
        token = args[i]
        i += 1
        if not token.startswith("-"):
            if not out and not seen:
                raise ValueError(f"positional model tag {token!r}: pass --model instead")
            out.append(token)  # a value of a flag that passes through
            continue
        name, has_inline, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        name = _canonical(name)
        rule = CPU_FLAG_RULES.get(name)
        if rule is None:
            out.append(token)
            continue
        values: list[str] = []
        if has_inline:
            values = [inline]
        elif rule.arity == "one" and i < len(args):
            values, i = [args[i]], i + 1
        elif rule.arity == "many":
            while i < len(args) and not args[i].startswith("-"):
                values.append(args[i])
                i += 1
        seen.add(name)
        out += _apply(name, rule, values, run)
    for flag, value in (("--model", run.model_dir), ("--port", str(run.port)), ("--host", LOOPBACK)):
        if flag not in seen:
            out += [flag, value]
    return out


def _canonical(name: str) -> str:
    """FlexibleArgumentParser accepts --tensor_parallel_size for --tensor-parallel-size."""
    return "--" + name[2:].replace("_", "-") if name.startswith("--") else name


def _apply(name: str, rule: CpuRule, values: list[str], run: CpuRun) -> list[str]:
    match rule.action:
        case Drop(prefix=prefix):
            if prefix and not (values and values[0].startswith(prefix)):
                return [name, *values]
            return []
        case SetTo(value=value):
            return [name, value]
        case CapAt(limit=limit):
            # Anything but a plain length within the limit ("-1", "auto", "16k", too long) becomes it.
            value = values[0] if values else ""
            return [name, value if value.isdigit() and 0 < int(value) <= limit else str(limit)]
        case FromRun(field=field):
            return [name, str(getattr(run, field))]
    raise AssertionError(rule)
