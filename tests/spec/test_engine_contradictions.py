"""engine_args_consistent: engineArgs that contradict themselves, the service they override, or the model spec."""

from __future__ import annotations

import pytest

from components.spec.rules import QUANTIZATION_WEIGHTS


def test_a_flag_and_its_negation_are_refused(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"enable-prefix-caching": True, "no-enable-prefix-caching": True}
    assert spec_problems(stack) == [
        (
            "services.0.engineArgs.no-enable-prefix-caching",
            "contradicts enable-prefix-caching: give enable-prefix-caching: true or false, not both",
        )
    ]


def test_a_negation_in_underscores_is_the_same_flag(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"no_enable_chunked_prefill": True, "enable-chunked-prefill": False}
    assert spec_problems(stack) == [
        (
            "services.0.engineArgs.no_enable_chunked_prefill",
            "contradicts enable-chunked-prefill: give enable-chunked-prefill: true or false, not both",
        )
    ]


def test_the_same_flag_in_two_spellings_is_refused(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"max-num-seqs": 64, "max_num_seqs": 128}
    assert spec_problems(stack) == [
        ("services.0.engineArgs.max_num_seqs", "the same flag as max-num-seqs: write it once")
    ]


def test_a_canary_negating_what_the_service_sets_must_override_it_instead(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"enable-prefix-caching": True}
    stack["services"][0]["canary"] = {"weightPercent": 10, "engineArgs": {"no-enable-prefix-caching": True}}
    assert spec_problems(stack) == [
        (
            "services.0.canary.engineArgs.no-enable-prefix-caching",
            "contradicts the service's engineArgs enable-prefix-caching, which the canary inherits: "
            "--no-enable-prefix-caching and --enable-prefix-caching would both be passed; "
            "give enable-prefix-caching: true or false here instead",
        )
    ]


def test_a_canary_overriding_the_flag_itself_is_fine(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"enable-prefix-caching": True}
    stack["services"][0]["canary"] = {"weightPercent": 10, "engineArgs": {"enable-prefix-caching": False}}
    assert spec_problems(stack) == []


def test_quantization_needing_a_quantized_checkpoint_on_bf16_weights_is_refused(stack, spec_problems):
    stack["services"][0]["engineArgs"] = {"quantization": "awq"}
    assert spec_problems(stack) == [
        (
            "services.0.engineArgs.quantization",
            "quantization awq serves int4 weights, but model.dtype says the checkpoint is bfloat16: vLLM cannot load "
            "it so, and the plan sizes memory by model.dtype; set model.dtype to the checkpoint's precision or drop "
            "quantization",
        )
    ]


@pytest.mark.parametrize(
    ("method", "dtype"),
    [
        ("gptq", "bfloat16"),
        ("gptq_marlin", "fp8"),
        ("fbgemm_fp8", "float16"),
        ("compressed-tensors", "bfloat16"),
        ("fp8", "int4"),
        ("awq", "int8"),
        ("experts_int8", "fp8"),
    ],
)
def test_quantization_against_model_dtype_is_refused(stack, spec_problems, method, dtype):
    stack["services"][0]["model"]["dtype"] = dtype
    stack["services"][0]["engineArgs"] = {"quantization": method}
    [(path, message)] = spec_problems(stack)
    assert path == "services.0.engineArgs.quantization"
    assert message.startswith(f"quantization {method} serves ") and f"the checkpoint is {dtype}" in message


@pytest.mark.parametrize(
    ("method", "dtype"),
    [
        ("awq", "int4"),
        ("awq_marlin", "int4"),
        ("gptq", "int8"),
        ("fp8", "bfloat16"),  # online FP8 of a 16-bit checkpoint
        ("fp8", "fp8"),
        ("fp8_per_block", "float16"),
        ("compressed-tensors", "fp8"),
        ("torchao", "bfloat16"),  # not in the table: left to vLLM
    ],
)
def test_quantization_matching_model_dtype_is_fine(stack, spec_problems, method, dtype):
    stack["services"][0]["model"]["dtype"] = dtype
    stack["services"][0]["engineArgs"] = {"quantization": method}
    assert spec_problems(stack) == []


def test_quantization_of_a_canary_is_checked_too(stack, spec_problems):
    stack["services"][0]["canary"] = {"weightPercent": 10, "engineArgs": {"quantization": "gptq"}}
    [(path, _)] = spec_problems(stack)
    assert path == "services.0.canary.engineArgs.quantization"


def test_every_quantization_method_in_the_table_is_one_of_vllms():
    """vLLM 0.32.0's QuantizationMethods (vllm/model_executor/layers/quantization/__init__.py)."""
    vllm_methods = {
        "awq", "auto_awq", "fp8", "fbgemm_fp8", "fp_quant", "modelopt", "modelopt_fp4", "modelopt_mxfp8",
        "modelopt_mixed", "auto_gptq", "gptq", "gptq_marlin", "awq_marlin", "humming", "compressed-tensors",
        "experts_int8", "quark", "moe_wna16", "torchao", "inc", "mxfp4", "gpt_oss_mxfp4", "deepseek_v4_fp8",
        "online", "fp8_per_tensor", "fp8_per_block", "fp8_per_channel", "int8_per_channel_weight_only",
        "nvfp4_per_token", "mxfp8",
    }  # fmt: skip
    assert set(QUANTIZATION_WEIGHTS) <= vllm_methods


def test_kv_cache_dtype_contradicting_the_model_spec_is_refused(stack, spec_problems):
    stack["services"][0]["model"]["kvCacheDtype"] = "fp8"
    stack["services"][0]["engineArgs"] = {"kv-cache-dtype": "auto"}
    assert spec_problems(stack) == [
        (
            "services.0.engineArgs.kv-cache-dtype",
            "auto contradicts model.kvCacheDtype fp8: set the KV cache dtype in one place (model.kvCacheDtype, which "
            "the plan reads)",
        )
    ]


def test_kv_cache_dtype_written_auto_in_the_model_and_fp8_in_a_canary_is_refused(stack, spec_problems):
    stack["services"][0]["model"]["kvCacheDtype"] = "auto"
    stack["services"][0]["canary"] = {"weightPercent": 10, "engineArgs": {"kv_cache_dtype": "fp8_e5m2"}}
    [(path, message)] = spec_problems(stack)
    assert path == "services.0.canary.engineArgs.kv_cache_dtype"
    assert message.startswith("fp8_e5m2 contradicts model.kvCacheDtype auto")


@pytest.mark.parametrize(
    ("model", "engine"),
    [
        (None, "fp8"),  # the model spec leaves it to its default: engineArgs decide
        ("fp8", "fp8_e4m3"),  # the same family
        ("fp8", "fp8"),
        ("auto", "auto"),
    ],
)
def test_kv_cache_dtype_agreeing_with_the_model_spec_is_fine(stack, spec_problems, model, engine):
    if model is not None:
        stack["services"][0]["model"]["kvCacheDtype"] = model
    stack["services"][0]["engineArgs"] = {"kv-cache-dtype": engine}
    assert spec_problems(stack) == []
