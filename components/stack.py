"""A stack file fully checked: the spec's own rules, then the rules that need the catalog."""

from __future__ import annotations

from pathlib import Path

from collections import defaultdict

from components.catalog import Catalog, load_catalog
from components.checks.collisions import object_key
from components.manifests.stack import service_objects
from components.planner import check_catalog_facts, plan_stack
from components.spec import SpecSource, StackError, read_spec
from components.spec.models import StackSpec
from components.spec.problems import Problem


def load_stack(path: str | Path, catalog: Catalog | None = None) -> SpecSource:
    """Read and check a stack file; raise StackError with every located problem."""
    source = read_spec(path)
    catalog = catalog or load_catalog()
    problems = check_catalog_facts(source.spec, catalog) or generated_name_collisions(source.spec, catalog)
    if problems:
        raise StackError(source.locate(problems))
    return source


def generated_name_collisions(spec: StackSpec, catalog: Catalog) -> list[Problem]:
    """Objects the manifests would give one name although they are different things (a service `chat-canary`
    beside service `chat`'s canary): reported at the name of each service whose objects collide."""
    plan = plan_stack(spec, catalog)
    owners: dict[tuple[str, str, str, str], list[int]] = defaultdict(list)
    for index, service in enumerate(spec.services):
        for obj in service_objects(service, spec, plan, catalog).all():
            owners[object_key(obj)].append(index)
    problems = []
    for (_, kind, _, name), indices in sorted(owners.items()):
        if len(indices) > 1:
            names = ", ".join(spec.services[i].name for i in dict.fromkeys(indices))
            for index in dict.fromkeys(indices):
                problems.append(Problem(("services", index, "name"),
                                        f"the {kind} {name!r} would be made for more than one of services {names}: "
                                        "rename one of them"))
    return problems
