"""Cross-layer checks over a whole render: facts that live between objects and between layers.

A schema looks at one object at a time; these look at what the program creates as a whole, the way the
cluster and AWS will meet it:

- `schedulability`: every pod template fits a node shape the program creates (kube-scheduler's filters);
- `ownership`: nothing an autoscaler scales also sets the replica count it owns;
- `aws_limits`: generated user data and names fit AWS's and Kubernetes' limits;
- `collisions`: no two objects (or AWS resources) of one kind share a name.

Pure: each check reads the recorded resources (RecordedResource.to_json() dicts: type, name, urn, parent,
provider, custom, inputs, options), the Kubernetes objects the program applies, and the catalog; no Pulumi
import. `inferfleet render` runs them all and fails on any problem.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from components.catalog import Catalog


@dataclass(frozen=True)
class Problem:
    """One cross-layer defect: which check found it, what it is about, and why it would fail for real."""

    check: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: {self.message}"


Resources = Sequence[dict[str, Any]]
Manifests = Sequence[dict[str, Any]]
Check = Callable[[Resources, Manifests, Catalog], list[Problem]]


def all_checks() -> list[Check]:
    """Every cross-layer check, in the order their problems are reported."""
    from components.checks import aws_limits, collisions, ownership, schedulability

    return [schedulability.check, ownership.check, aws_limits.check, collisions.check]


def run_all(resources: Resources, manifests: Manifests, catalog: Catalog) -> list[Problem]:
    return [problem for check in all_checks() for problem in check(resources, manifests, catalog)]
