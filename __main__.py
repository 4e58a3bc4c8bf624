"""Pulumi entry point. Every environment is two stacks (components/phases.py): `<env>` (the platform) and
`<env>-workloads`; both take `stacks/<env>.yaml`, which decides everything they deploy."""

from pathlib import Path

import pulumi

from components.catalog import load_catalog
from components.phases import stack_phase
from components.platform import deploy_stack
from components.spec import StackError
from components.stack import load_stack

environment, phase = stack_phase(pulumi.get_stack())
stack_file = Path(__file__).parent / "stacks" / f"{environment}.yaml"
try:
    source = load_stack(stack_file)
except StackError as error:
    raise pulumi.RunError(f"invalid stack spec:\n{error}") from None

outputs = deploy_stack(source, load_catalog(), pulumi.get_stack())
for key, value in outputs.items():
    pulumi.export(key, value)
