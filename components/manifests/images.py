"""The serving image of each service: the spec's `image` (a mirror pinned by digest), or the release
the project pins for its engine. GPU pools pre-pull these on warm instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from components.catalog import Catalog
from components.manifests.versions import RAY_LLM_IMAGE, TRITON_IMAGE, TRITON_VLLM_IMAGE, VLLM_IMAGE
from components.spec.models import ServiceSpec, StackSpec

T = TypeVar("T")


def serving_image(service: ServiceSpec, catalog: Catalog) -> str:
    if service.image:
        return service.image
    if service.engine == "vllm":
        return VLLM_IMAGE
    if service.engine == "ray-serve":
        return RAY_LLM_IMAGE
    architecture = catalog.architecture_for(service.model)
    assert architecture is not None, "validated stacks name known models"
    return TRITON_VLLM_IMAGE if service.triton_backend(architecture.kind) == "vllm" else TRITON_IMAGE


def images_by_pool(spec: StackSpec, catalog: Catalog, built: Mapping[str, T] | None = None) -> dict[str, list[str | T]]:
    """Pool name -> the images of the services that may run there, in service order, once each. `built`
    maps a service name to the image the stack builds for it (a Pulumi output where it is not known yet)."""
    built = built or {}
    images: dict[str, list[str | T]] = {pool.name: [] for pool in spec.gpu_pools}
    for service in spec.services:
        image = built.get(service.name, serving_image(service, catalog))
        for pool in service.pools:
            if not any(image is seen or image == seen for seen in images[pool]):
                images[pool].append(image)
    return images
