"""Live stacks survive refactoring: every resource of the three example stacks keeps its URN, or the resource
that replaces it names the old URN in `aliases`. Pulumi reads a changed URN (a renamed child, a component moved
under a new parent, a new type token) as delete-and-create: a renamed cluster or bucket would be destroyed.

`tests/urns/<env>.txt` is the list of URNs as they were; a change that really removes or replaces a resource
updates it on purpose: `python -m tests.test_urns` rewrites the files.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from components.render import render
from components.stack import load_stack

ROOT = Path(__file__).resolve().parent.parent
BASELINE = Path(__file__).resolve().parent / "urns"
ENVIRONMENTS = ("dev", "staging", "prod")
STACK_TYPE = "pulumi:pulumi:Stack"


def _alias_urn(alias: dict[str, Any], resource: dict[str, Any]) -> str:
    """The URN an alias names, as the engine computes it: a field the alias leaves out is the resource's own; a
    parent that is the stack (or none) adds nothing to the type, any other parent its own qualified type."""
    if "urn" in alias:
        return str(alias["urn"])
    spec = alias.get("spec", alias)
    head, project = resource["urn"].split("::")[:2]
    stack = spec.get("stack") or head.split(":")[2]
    project = spec.get("project") or project
    parent = "" if spec.get("noParent") else spec.get("parentUrn", resource.get("parent")) or ""
    parent_type = parent.split("::")[2] if parent else ""
    prefix = "" if not parent_type or parent_type == STACK_TYPE else parent_type + "$"
    return f"urn:pulumi:{stack}::{project}::{prefix}{spec.get('type') or resource['type']}::{spec.get('name') or resource['name']}"


def urns_of(environment: str) -> tuple[set[str], set[str]]:
    """(URNs, URNs named by aliases) of the environment's render."""
    resources = [r.to_json() for r in render(load_stack(ROOT / "stacks" / f"{environment}.yaml")).resources]
    aliased = {_alias_urn(a, r) for r in resources for a in (r.get("options") or {}).get("aliases") or []}
    return {r["urn"] for r in resources}, aliased


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_resource_keeps_its_urn_or_aliases_it(environment: str) -> None:
    before = set(BASELINE.joinpath(f"{environment}.txt").read_text().split())
    now, aliased = urns_of(environment)
    assert sorted(before - now - aliased) == [], "resources that would be deleted and created again"


def test_an_alias_names_the_urn_the_resource_had_under_its_old_parent_and_type() -> None:
    resource = {"urn": "urn:pulumi:prod::inferfleet::inferfleet:aws:ModelStorage$aws:s3/bucket:Bucket::prod-models",
                "name": "prod-models", "type": "aws:s3/bucket:Bucket",
                "parent": "urn:pulumi:prod::inferfleet::inferfleet:aws:ModelStorage::prod-storage"}
    at_the_root = {"spec": {"parentUrn": "", "type": "aws:s3/bucketV2:BucketV2"}}
    assert _alias_urn(at_the_root, resource) == "urn:pulumi:prod::inferfleet::aws:s3/bucketV2:BucketV2::prod-models"
    renamed = {"spec": {"name": "models"}}
    assert _alias_urn(renamed, resource) == resource["urn"].replace("::prod-models", "::models")
    under_the_stack = {"spec": {"parentUrn": "urn:pulumi:prod::inferfleet::pulumi:pulumi:Stack::inferfleet-prod"}}
    assert _alias_urn(under_the_stack, resource) == "urn:pulumi:prod::inferfleet::aws:s3/bucket:Bucket::prod-models"


def main() -> None:
    for environment in ENVIRONMENTS:
        now, _ = urns_of(environment)
        BASELINE.joinpath(f"{environment}.txt").write_text("".join(f"{urn}\n" for urn in sorted(now)))
    print(f"wrote {', '.join(f'{BASELINE}/{e}.txt' for e in ENVIRONMENTS)}", file=sys.stderr)


if __name__ == "__main__":
    main()
