"""The CPU build of the pinned vLLM release (.venv-vllm) as a local server: where it is, its environment,
and `cpu_args`, the one place where the container arguments the manifests generate are changed so a
CPU-only machine can serve them.

Every changed flag is in `CPU_FLAG_RULES` with its reason; every other flag passes through unchanged,
so the real server still judges it. `make local` and the e2e tests both start vLLM through this module,
so a local run serves exactly what the tests check.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from components.local.processes import LOOPBACK

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_MODEL_SCRIPT = Path(__file__).with_name("tiny_model.py")
"""Run with .venv-vllm's python (it needs torch): never imported by the main venv."""
STAMP_NAME = ".inferfleet-stamp"
"""Written by scripts/vllm_cpu_venv.sh only after a complete, importable install."""
CPU_MAX_MODEL_LEN = 1024
"""Longest sequence the CPU run serves: within the tiny model's positions, and small enough that the
KV cache in VLLM_CPU_KVCACHE_SPACE holds many sequences."""


def vllm_venv() -> Path:
    """The venv scripts/vllm_cpu_venv.sh builds (same VLLM_VENV override as the script)."""
    return REPO_ROOT / os.environ.get("VLLM_VENV", ".venv-vllm")


def installed_vllm_python() -> Path | None:
    """.venv-vllm's interpreter when the venv is complete (its stamp is written last); None otherwise."""
    venv = vllm_venv()
    python = venv / "bin" / "python"
    return python if python.exists() and (venv / STAMP_NAME).exists() else None


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
    "--model": CpuRule(FromRun("model_dir"), "no real weights here: serve the tiny model the run writes"),
    "--tokenizer": CpuRule(FromRun("model_dir"), "the tiny model carries its own tokenizer"),
    "--load-format": CpuRule(Drop(), "the tiny model is plain safetensors on local disk (no S3 streaming)"),
    "--port": CpuRule(FromRun("port"), "a free port, so runs on one machine do not collide"),
    "--host": CpuRule(SetTo(LOOPBACK), "local runs listen on loopback only"),
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
