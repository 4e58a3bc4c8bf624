"""Run Pulumi code under the project's recording mocks and hand tests the recorded resources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.mocks import RecordedResource, install


def run_under_mocks(build: Callable[[], Any], stack: str = "prod", region: str = "us-east-1") -> list[RecordedResource]:
    """Call `build` as a Pulumi program and return every resource it registered (after all RPCs finish)."""
    monitor = install("inferfleet", stack, region)

    @pulumi.runtime.test
    def program():
        build()

    program()
    return monitor.recorded


@pytest.fixture
def under_mocks() -> Callable[..., list[RecordedResource]]:
    return run_under_mocks


def of_type(resources: list[RecordedResource], token: str) -> list[RecordedResource]:
    return [r for r in resources if r.type == token]
