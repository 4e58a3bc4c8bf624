"""Which images `images.build` builds, from which context and base, under which tag."""

from __future__ import annotations

import shutil
from dataclasses import replace

from components.manifests import image_builds as ib
from components.manifests import versions as v

BASE = "sha256:" + "1" * 64


def test_prod_builds_one_image_per_flavour_its_services_use(prod, catalog):
    spec, _ = prod
    assert spec.images.build
    assert ib.built_services(spec, catalog) == {"chat": "vllm", "rag": "ray-serve", "rerank": "triton"}
    assert [b.key for b in ib.image_builds(spec, catalog)] == ["vllm", "ray-serve", "triton", "gate"]


def test_a_service_with_its_own_image_is_not_built(prod, catalog):
    spec, _ = prod
    chat = next(s for s in spec.services if s.name == "chat")
    mirrored = chat.model_copy(update={"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/vllm@sha256:" + "2" * 64})
    spec = spec.model_copy(update={"services": [mirrored if s.name == "chat" else s for s in spec.services]})
    assert "chat" not in ib.built_services(spec, catalog)
    assert "vllm" not in [b.key for b in ib.image_builds(spec, catalog)]


def test_nothing_is_built_unless_asked(planned, catalog):
    spec, _ = planned
    if not spec.images.build:
        assert ib.built_services(spec, catalog) == {} and ib.image_builds(spec, catalog) == []


def test_a_triton_decoder_gets_the_vllm_flavour(triton_decoder, catalog):
    spec, _ = triton_decoder
    assert ib.built_services(spec, catalog)["chat"] == "triton-vllm"


def test_builds_build_on_the_pinned_releases_with_the_base_digest():
    assert ib.BUILDS["vllm"].base == v.VLLM_IMAGE
    assert ib.BUILDS["vllm"].build_args(BASE) == {"VLLM_VERSION": v.VLLM_VERSION, "VLLM_DIGEST": BASE}
    assert ib.BUILDS["triton-vllm"].build_args(BASE)["TRITON_FLAVOUR"] == "vllm-python-py3"
    assert ib.BUILDS["triton"].base == v.TRITON_IMAGE and ib.BUILDS["ray-serve"].base == v.RAY_LLM_IMAGE
    for build in ib.BUILDS.values():
        dockerfile = (build.dockerfile or build.context / "Dockerfile").read_text()
        for arg in build.build_args(BASE):
            assert f"ARG {arg}" in dockerfile, (build.key, arg)


def test_the_tag_follows_the_context_and_the_arguments(tmp_path):
    context = tmp_path / "vllm"
    shutil.copytree(ib.BUILDS["vllm"].context, context, ignore=shutil.ignore_patterns("__pycache__"))
    build = replace(ib.BUILDS["vllm"], context=context)
    tag = build.tag(BASE)
    assert tag.startswith("vllm-") and tag == build.tag(BASE)
    assert build.tag("sha256:" + "2" * 64) != tag
    (context / "__pycache__").mkdir()
    (context / "__pycache__" / "weight_cache.cpython-311.pyc").write_bytes(b"bytecode")
    assert build.tag(BASE) == tag
    (context / "weight_cache.py").write_text((context / "weight_cache.py").read_text() + "\n# changed\n")
    assert build.tag(BASE) != tag
