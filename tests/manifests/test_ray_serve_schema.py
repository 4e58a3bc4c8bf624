"""Every generated serveConfigV2 against the pinned Ray's own schema (tests/manifests/check_serve_config.py,
run by .venv-vllm's python: Ray needs a protobuf the main venv cannot have). Build it with
scripts/vllm_cpu_venv.sh (`make e2e` does). Without it the test skips, except in CI, where it fails."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from components.manifests.ray_serve import ray_serve_objects
from components.planner import plan_stack
from components.spec.models import CanarySpec, ShadowSpec
from components.stack import load_stack
from e2e.ray_cluster import ray_bin

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHECKER = Path(__file__).with_name("check_serve_config.py")
CHECK_TIMEOUT_SECONDS = 120


def _with_revisions(spec):
    """The ray-serve services with a canary and a shadow too, so their applications are checked as well."""
    canary = CanarySpec.model_validate({"weightPercent": 5, "engineArgs": {"max-num-batched-tokens": 4096}})
    shadow = ShadowSpec.model_validate({"mirrorPercent": 10, "engineArgs": {"enforce-eager": True}})
    services = [
        svc.model_copy(update={"canary": canary, "shadow": shadow}) if svc.engine == "ray-serve" else svc
        for svc in spec.services
    ]
    return spec.model_copy(update={"services": services})


def generated_documents(catalog) -> dict[str, str]:
    documents = {}
    for path in sorted((ROOT / "stacks").glob("*.yaml")):
        spec = load_stack(str(path), catalog).spec
        for variant, variant_spec in (("", spec), ("+revisions", _with_revisions(spec))):
            plan = plan_stack(variant_spec, catalog)
            for service in variant_spec.services:
                if service.engine != "ray-serve":
                    continue
                for ray_service in ray_serve_objects(service, variant_spec, plan, catalog):
                    if ray_service["kind"] == "RayService":
                        name = ray_service["metadata"]["name"]
                        documents[f"{path.stem}/{name}{variant}"] = ray_service["spec"]["serveConfigV2"]
    return documents


def _broken(text: str, change) -> str:
    document = yaml.safe_load(text)
    change(document)
    return yaml.safe_dump(document, sort_keys=False)


def _duplicate_route(document):
    document["applications"][1]["route_prefix"] = "/"


def _misspelt_llm_field(document):
    config = document["applications"][0]["args"]["llm_configs"][0]
    config["acelerator_type"] = config.pop("accelerator_type")


def _inverted_bounds(document):
    document["applications"][1]["deployments"][0]["autoscaling_config"] = {"min_replicas": 8, "max_replicas": 2}


BROKEN = {"duplicate-route": _duplicate_route, "misspelt-llm-field": _misspelt_llm_field, "inverted-bounds": _inverted_bounds}
"""Mistakes Ray rejects (a duplicate route prefix, bounds the wrong way round) or would silently ignore."""


@pytest.fixture(scope="module")
def results(catalog):
    python = ray_bin("python")
    documents = generated_documents(catalog)
    prod = documents["prod/rag"]
    documents |= {f"broken/{name}": _broken(prod, change) for name, change in BROKEN.items()}
    run = subprocess.run(
        [str(python), str(CHECKER)],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_SECONDS,
        check=False,
    )
    assert run.stdout, run.stderr
    return json.loads(run.stdout)


def test_every_generated_serve_config_is_valid(results):
    generated = {label: errors for label, errors in results.items() if not label.startswith("broken/")}
    assert {"staging/rag", "prod/rag", "prod/rag+revisions"} <= set(generated)
    assert generated == {label: [] for label in generated}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_serve_config_is_rejected(results, name):
    assert results[f"broken/{name}"], f"{name} was accepted"


def test_each_mistake_is_reported_where_it_is(results):
    assert any("route prefix" in error for error in results["broken/duplicate-route"])
    assert any("acelerator_type" in error for error in results["broken/misspelt-llm-field"])
    assert any("max_replicas" in error for error in results["broken/inverted-bounds"])
