"""The service a bench measures, taken from a stack file: its workload lengths and its SLO.

Problems go through the stack's own error reporting (StackError, `FILE:LINE: path: message`), so a
wrong `--service` reads like any other spec problem: located at the file's `services` key.
"""

from __future__ import annotations

from pathlib import Path

from components.spec import Problem, ServiceSpec, StackError
from components.stack import load_stack


def service_from_stack(stack: str | Path, name: str) -> ServiceSpec:
    """The named service of a valid stack file; StackError when the file is invalid or lacks it."""
    source = load_stack(stack)
    for service in source.spec.services:
        if service.name == name:
            return service
    names = ", ".join(service.name for service in source.spec.services)
    raise StackError(source.locate([Problem(("services",), f"no service named {name!r}; the stack has: {names}")]))
