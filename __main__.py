"""Pulumi entry point: `stacks/<pulumi stack>.yaml` decides everything the stack deploys."""

from pathlib import Path

import pulumi

from components.catalog import load_catalog
from components.planner import plan_stack
from components.spec import StackError
from components.stack import load_stack

stack_file = Path(__file__).parent / "stacks" / f"{pulumi.get_stack()}.yaml"
try:
    source = load_stack(stack_file)
except StackError as error:
    raise pulumi.RunError(f"invalid stack spec:\n{error}") from None

plan = plan_stack(source.spec, load_catalog())
pulumi.export("plan", plan.to_json())
