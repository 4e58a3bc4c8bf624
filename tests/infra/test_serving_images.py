"""images.build under the recording mocks: each base digest pinned in an SSM parameter per release and
kept, each image built for the pools' platform, pushed to its engine's ECR repository, never built on
preview, and served (and pre-pulled by warm pools) by the pushed digest."""

from __future__ import annotations

import json
import re

import pytest

from components.aws.serving_images import ServingImagesArgs, base_digest_parameter
from components.aws.user_data import read_launch_template_user_data
from components.catalog import load_catalog
from components.manifests.image_builds import BUILDS
from components.render import kubernetes_objects, render
from components.stack import load_stack

IMAGE = "docker-build:index:Image"
PARAMETER = "aws:ssm/parameter:Parameter"
DIGEST_REF = re.compile(r"^123456789012\.dkr\.ecr\.us-east-1\.amazonaws\.com/inferfleet/prod/[a-z-]+:[a-z-]+-[0-9a-f]{16}@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def resources():
    return render(load_stack("stacks/prod.yaml"), load_catalog()).resources


def _of(resources, token):
    return [r for r in resources if r.type == token]


def test_one_image_per_flavour_pushed_to_its_engines_repository_and_not_built_on_preview(resources):
    images = {r.name.removeprefix("prod-images-"): r.inputs for r in _of(resources, IMAGE)}
    assert set(images) == {"vllm", "ray-serve", "triton", "gate"}
    for key, inputs in images.items():
        assert inputs["push"] is True and inputs["buildOnPreview"] is False
        assert inputs["platforms"] == ["linux/amd64"]
        assert inputs["context"]["location"] == str(BUILDS[key].context)
        (tag,) = inputs["tags"]
        assert tag.startswith(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/inferfleet/prod/{BUILDS[key].engine}:{key}-")
        (registry,) = inputs["registries"]
        assert registry["address"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
        assert registry["password"] == "[secret]"


def test_each_base_digest_is_pinned_per_release_and_kept(resources):
    parameters = {r.inputs["name"]: r for r in _of(resources, PARAMETER)}
    for key in ("vllm", "ray-serve", "triton", "gate"):
        name = base_digest_parameter("prod", BUILDS[key])
        assert name in parameters, name
        assert parameters[name].options["ignoreChanges"] == ["value"]
    assert base_digest_parameter("prod", BUILDS["vllm"]) == "/inferfleet/prod/image-bases/vllm/vllm-openai/v0.32.0"
    images = {r.name.removeprefix("prod-images-"): r.inputs for r in _of(resources, IMAGE)}
    for key, inputs in images.items():
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", inputs["buildArgs"][BUILDS[key].digest_arg]), key


def test_serving_pods_run_the_pushed_digests(resources):
    images = {c["image"] for obj in kubernetes_objects(resources) for c in _containers(obj)
              if c["name"] not in ("fetch-weights",)}
    assert images and all(DIGEST_REF.match(image) for image in images), images


def test_warm_pools_pre_pull_the_pushed_digests(resources):
    """Each warm pool's pre-pull list (an SSM parameter the node reads at boot) holds the pushed digests of the
    serving images that run there, and the launch templates hold none: an image rollout changes a parameter,
    not a template."""
    lists = {r.inputs["name"]: r.inputs["insecureValue"].split() for r in _of(resources, "aws:ssm/parameter:Parameter")
             if r.inputs["name"].startswith("/inferfleet/prod/prepull/")}
    warm = [r for r in _of(resources, "aws:autoscaling/group:Group") if r.inputs.get("warmPool")]
    assert warm and len(lists) == len(warm)
    pushed = {c["image"] for obj in kubernetes_objects(resources) if obj["kind"] != "Job"
              for c in _containers(obj) if DIGEST_REF.match(c["image"])}
    for images in lists.values():
        assert images and set(images) <= pushed
    templates = " ".join(read_launch_template_user_data(t.inputs["userData"])
                         for t in _of(resources, "aws:ec2/launchTemplate:LaunchTemplate"))
    assert not [image for image in pushed if image.split("@")[0] in templates]


def test_arguments_are_checked_at_construction():
    build = BUILDS["vllm"]
    with pytest.raises(ValueError, match="ServingImagesArgs.builds"):
        ServingImagesArgs("prod", [], {}, "123456789012")
    with pytest.raises(ValueError, match="ServingImagesArgs.repository_urls: no repository for vllm"):
        ServingImagesArgs("prod", [build], {"triton": "x"}, "123456789012")
    with pytest.raises(ValueError, match="ServingImagesArgs.platform"):
        ServingImagesArgs("prod", [build], {"vllm": "x"}, "123456789012", platform="linux/sparc")


def _containers(obj):
    spec = obj.get("spec") or {}
    templates = [spec.get("template") or {}]
    cluster = spec.get("rayClusterConfig") or {}
    templates += [(cluster.get("headGroupSpec") or {}).get("template") or {}]
    templates += [g.get("template") or {} for g in cluster.get("workerGroupSpecs") or []]
    return [c for t in templates for c in [*(t.get("spec") or {}).get("initContainers", []),
                                          *(t.get("spec") or {}).get("containers", [])]]


def test_the_recorded_inputs_are_json(resources):
    json.dumps([r.to_json() for r in _of(resources, IMAGE)])
