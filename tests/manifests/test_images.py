"""Serving images: the engine's pinned release unless the spec names a mirror; what each pool pre-pulls."""

from components.manifests.images import images_by_pool, serving_image
from components.manifests.versions import RAY_LLM_IMAGE, TRITON_IMAGE, VLLM_IMAGE


def test_each_pool_pre_pulls_the_images_of_the_services_that_may_run_there(prod, catalog):
    spec, _ = prod
    assert images_by_pool(spec, catalog) == {
        "h100-ondemand": [VLLM_IMAGE],
        "h100-spot": [VLLM_IMAGE],
        "h200-spot": [VLLM_IMAGE],
        "a100-spot": [VLLM_IMAGE],
        "l40s-ondemand": [RAY_LLM_IMAGE],
        "l40s-spot": [RAY_LLM_IMAGE],
        "l40s-24xl-spot": [RAY_LLM_IMAGE],
        "l4-ondemand": [TRITON_IMAGE],
    }


def test_the_spec_image_wins(prod, catalog):
    spec, _ = prod
    mirror = "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm-openai@sha256:" + "0" * 64
    service = spec.services[0].model_copy(update={"image": mirror})
    assert serving_image(service, catalog) == mirror
