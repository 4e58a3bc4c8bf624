"""Running the pinned vLLM release (its CPU build, in .venv-vllm) from the main venv's tests.

Three things are done here so that every e2e test does them the same way:

- the skip-or-fail rule when .venv-vllm is missing (a skip in CI would hide a broken set-up, so
  with CI=true the test fails instead);
- `parse_with_real_vllm`: vLLM's own argument parser and config validation on argument vectors;
- `generated_vllm_vectors`: the container arguments the manifests give every vLLM replica set.

Where the venv is, its environment and `cpu_args` (the CPU mapping of the generated arguments) live in
components/local/vllm_cpu.py, shared with `make local`; they are re-exported here for the tests.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from components.catalog import load_catalog
from components.local.processes import LOOPBACK
from components.local.vllm_cpu import (
    CPU_FLAG_RULES,
    CPU_MAX_MODEL_LEN,
    REPO_ROOT,
    STAMP_NAME,
    TINY_MODEL_SCRIPT,
    CapAt,
    CpuRule,
    Drop,
    FromRun,
    SetTo,
    cpu_args,
    installed_vllm_python,
    vllm_env,
    vllm_venv,
)
from components.manifests.placement import replica_sets
from components.manifests.vllm import vllm_args
from components.planner import plan_stack
from components.spec.models import ModelArchitecture
from components.stack import load_stack
from tests.tooling import missing_tool

__all__ = [
    "CPU_FLAG_RULES", "CPU_MAX_MODEL_LEN", "LOOPBACK", "REPO_ROOT", "STAMP_NAME", "TINY_MODEL_SCRIPT",
    "CapAt", "CpuRule", "Drop", "FromRun", "SetTo", "cpu_args", "vllm_env", "vllm_venv",
]

CHECK_SCRIPT = Path(__file__).with_name("check_vllm_args.py")


def vllm_python() -> Path:
    """.venv-vllm's interpreter; skips the calling test when the venv is missing or incomplete.

    Under CI=true it fails instead: CI builds the venv (`make e2e`), so a missing one is a bug.
    """
    python = installed_vllm_python()
    if python is not None:
        return python
    missing_tool(f"{vllm_venv()} is missing or incomplete: build it with scripts/vllm_cpu_venv.sh (make e2e does)")


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
