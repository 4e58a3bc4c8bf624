"""The Pulumi program (`__main__.py`) run in-process under the project's mocks, as `pulumi up -s <stack>` would:
the stack's name picks the environment's spec and the phase."""

import runpy
from pathlib import Path

import pulumi
import pytest

from components.mocks import install

ROOT = Path(__file__).resolve().parent.parent


def run_program(stack: str, stack_outputs: dict | None = None) -> dict:
    monitor = install("inferfleet", stack, "us-east-1", stack_outputs)
    namespace: dict = {}

    @pulumi.runtime.test
    def program():
        namespace.update(runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))

    program()
    namespace["recorded"] = monitor.recorded
    return namespace


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_platform_stack_loads_the_spec_named_like_it_and_exports_what_the_workloads_read(stack):
    namespace = run_program(stack)
    assert (namespace["environment"], namespace["phase"]) == (stack, "platform")
    assert namespace["source"].spec.environment == stack
    assert {"clusterName", "kubeconfig", "poolGroupNames", "deployRunner"} <= set(namespace["outputs"])
    assert not [r for r in namespace["recorded"] if r.type.startswith("kubernetes:")]


def test_the_workloads_stack_reads_its_platform_stack() -> None:
    with pytest.raises(Exception, match="no outputs mocked for stack 'organization/inferfleet/dev'"):
        run_program("dev-workloads")


def test_program_stops_with_located_problems_for_an_unknown_stack():
    with pytest.raises(pulumi.RunError) as error:
        run_program("qa")
    assert "stacks/qa.yaml:1: <root>: no such file" in str(error.value)
    with pytest.raises(pulumi.RunError) as error:
        run_program("qa-workloads")
    assert "stacks/qa.yaml:1: <root>: no such file" in str(error.value)
