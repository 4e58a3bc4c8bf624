"""The Pulumi program (`__main__.py`) run in-process under Pulumi's mocks, as `pulumi up -s <env>` would."""

import runpy
from pathlib import Path

import pulumi
import pytest

ROOT = Path(__file__).resolve().parent.parent


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return [f"{args.name}-id", args.inputs]

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def run_program(stack: str) -> dict:
    pulumi.runtime.set_mocks(Mocks(), project="inferfleet", stack=stack, preview=False)
    return runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_program_loads_the_spec_named_like_the_stack_and_plans_it(stack):
    namespace = run_program(stack)
    assert namespace["source"].spec.environment == stack
    assert namespace["plan"].environment == stack
    assert namespace["plan"].cost.hourly_usd_max > 0


def test_program_stops_with_located_problems_for_an_unknown_stack():
    with pytest.raises(pulumi.RunError) as error:
        run_program("qa")
    assert "stacks/qa.yaml:1: <root>: no such file" in str(error.value)
