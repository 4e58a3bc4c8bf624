"""The vLLM options the catalog holds belong to the vLLM release the manifests pin."""

from components.catalog.vllm_options import vllm_options, vllm_options_version
from components.manifests.versions import VLLM_VERSION


def test_options_are_those_of_the_pinned_release():
    assert vllm_options_version() == VLLM_VERSION


def test_options_hold_what_the_manifests_generate():
    options = vllm_options()
    assert options["--served-model-name"] == "many"
    for flag in ("--tensor-parallel-size", "--max-model-len", "--gpu-memory-utilization", "--max-num-seqs"):
        assert options[flag] == "one"
    assert options["--enable-prefix-caching"] == options["--no-enable-prefix-caching"] == "flag"
