"""The Pulumi program (`__main__.py`) run in-process under the project's mocks, as `pulumi up -s <env>` would."""

import runpy
from pathlib import Path

import pulumi
import pytest

from components.mocks import install

ROOT = Path(__file__).resolve().parent.parent


def run_program(stack: str) -> dict:
    install("inferfleet", stack, "us-east-1")
    namespace: dict = {}

    @pulumi.runtime.test
    def program():
        namespace.update(runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))

    program()
    return namespace


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_program_loads_the_spec_named_like_the_stack_and_deploys_it(stack):
    namespace = run_program(stack)
    assert namespace["source"].spec.environment == stack
    assert namespace["deployment"].plan.environment == stack
    assert set(namespace["platform"].pools) == {pool.name for pool in namespace["source"].spec.gpu_pools}


def test_program_stops_with_located_problems_for_an_unknown_stack():
    with pytest.raises(pulumi.RunError) as error:
        run_program("qa")
    assert "stacks/qa.yaml:1: <root>: no such file" in str(error.value)
