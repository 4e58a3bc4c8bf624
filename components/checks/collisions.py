"""Two things of one kind with one name: the second apply overwrites the first (Kubernetes, server-side
apply from two ConfigGroups) or fails (AWS refuses an IAM role, bucket or rule that exists). Names the program
derives from the spec can meet (a service `chat-canary` beside service `chat`'s canary), so every name is
compared, not only the ones a person wrote.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from components.catalog import Catalog
from components.checks import Manifests, Problem, Resources
from components.spec.naming import NAME_LIMITS_BY_TYPE

CHECK = "name-collisions"
CLUSTER_SCOPED_KINDS = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                                  "PriorityClass", "StorageClass", "GatewayClass", "IngressClass"})


def object_key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(API group, kind, namespace, name): what the API server keys an object by (the version does not count)."""
    metadata = obj.get("metadata") or {}
    kind = str(obj.get("kind", ""))
    namespace = "" if kind in CLUSTER_SCOPED_KINDS else str(metadata.get("namespace") or "default")
    return str(obj.get("apiVersion", "")).rpartition("/")[0], kind, namespace, str(metadata.get("name", ""))


def duplicate_objects(objects: Manifests) -> dict[tuple[str, str, str, str], int]:
    """Keys that more than one object carries, with how many."""
    counts: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for obj in objects:
        counts[object_key(obj)] += 1
    return {key: count for key, count in counts.items() if count > 1}


def _kubernetes(manifests: Manifests) -> Iterator[Problem]:
    for (group, kind, namespace, name), count in sorted(duplicate_objects(manifests).items()):
        where = f"{namespace}/{name}" if namespace else name
        yield Problem(CHECK, f"{kind} {where}", f"{count} objects of {group or 'core'} kind {kind} share this name; "
                                                 "the last one applied would replace the others")


def _aws(resources: Resources) -> Iterator[Problem]:
    names: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for resource in resources:
        limit = NAME_LIMITS_BY_TYPE.get(str(resource.get("type")))
        inputs = resource.get("inputs") or {}
        value = inputs.get(limit.name_input) if limit else None
        if limit and isinstance(value, str) and value:
            scope = repr([inputs.get(key) for key in limit.scope_inputs])
            names[(str(resource["type"]), scope, value)].append(str(resource.get("name")))
    for (kind, _scope, value), logical in sorted(names.items()):
        if len(logical) > 1:
            yield Problem(CHECK, f"{kind} {value}", f"set as the name of {', '.join(sorted(logical))}; AWS refuses "
                                                     "the second")


def check(resources: Resources, manifests: Manifests, catalog: Catalog) -> list[Problem]:
    return [*_kubernetes(manifests), *_aws(resources)]
