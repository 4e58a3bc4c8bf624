"""A small valid stack as plain data; tests mutate a copy, write it as YAML and read it back."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.spec import StackError, read_spec
from components.spec.problems import dotted

VALID_STACK: dict[str, Any] = {
    "environment": "dev",
    "tags": {"owner": "ml-platform", "costCenter": "ml-dev"},
    "aws": {"region": "us-east-1", "availabilityZones": ["us-east-1a", "us-east-1b"]},
    "network": {"vpcCidr": "10.0.0.0/16", "natGateways": "single"},
    "cluster": {
        "kubernetesVersion": "1.34",
        "endpointAccess": "public",
        "systemPool": {"instanceTypes": ["m7i.large"], "minSize": 1, "maxSize": 2},
    },
    "gpuPools": [
        {"name": "ondemand", "instanceTypes": ["g6.xlarge"], "capacityType": "onDemand", "minSize": 1, "maxSize": 3},
        {"name": "spot", "instanceTypes": ["g6.xlarge"], "capacityType": "spot", "minSize": 0, "maxSize": 4},
    ],
    "services": [
        {
            "name": "chat",
            "engine": "vllm",
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "uri": "s3://inferfleet-dev-models/llama-8b"},
            "pools": ["spot", "ondemand"],
            "replicas": {"min": 1, "max": 2},
            "maxModelLen": 8192,
            "workload": {"inputTokens": 1024, "outputTokens": 256, "peakRequestsPerSecond": 1},
            "slo": {"ttftP99Ms": 3000, "itlP99Ms": 120},
        }
    ],
}


@pytest.fixture
def stack() -> dict[str, Any]:
    """A fresh deep copy of the valid stack, free to mutate."""
    return copy.deepcopy(VALID_STACK)


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[..., Path]:
    """Write data as YAML to tmp_path/<environment>.yaml (or `name`) and return the path."""

    def write(data: Any, name: str | None = None) -> Path:
        if name is None:
            name = f"{data['environment']}.yaml"
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(text: str, name: str = "dev.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def spec_problems(write_stack) -> Callable[[Any], list[tuple[str, str]]]:
    """read_spec on the data; the (dotted path, message) of every problem, [] when the stack is valid."""

    def problems(data: Any) -> list[tuple[str, str]]:
        try:
            read_spec(write_stack(data))
        except StackError as error:
            return [(dotted(p.path), p.message) for p in error.problems]
        return []

    return problems
