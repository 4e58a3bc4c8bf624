"""The example stacks with their plans, shared by the serving manifest tests."""

from __future__ import annotations

import pytest

from components.catalog import load_catalog
from components.planner import plan_stack
from components.stack import load_stack

KUBERNETES_VERSION = "1.34.0"


@pytest.fixture(scope="session")
def catalog():
    return load_catalog()


@pytest.fixture(scope="session", params=["dev", "staging", "prod"])
def planned(request, catalog):
    """(spec, plan) of each example stack."""
    spec = load_stack(f"stacks/{request.param}.yaml", catalog).spec
    return spec, plan_stack(spec, catalog)


@pytest.fixture(scope="session")
def prod(catalog):
    spec = load_stack("stacks/prod.yaml", catalog).spec
    return spec, plan_stack(spec, catalog)


@pytest.fixture(scope="session")
def triton_decoder(catalog, tmp_path_factory):
    """(spec, plan) of prod with its chat model (a decoder) served by Triton's vLLM backend."""
    import yaml
    from pathlib import Path

    raw = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    chat = next(service for service in raw["services"] if service["name"] == "chat")
    chat["engine"] = "triton"
    chat["triton"] = {"maxBatchSize": 48}
    path = tmp_path_factory.mktemp("stacks") / "prod.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_stack(str(path), catalog).spec
    return spec, plan_stack(spec, catalog)
