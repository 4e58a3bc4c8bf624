"""`inferfleet render`: the Pulumi program run in-process under mocks, written out for review.

Writes `resources.json` (every resource: type, name, parent, provider, inputs with secrets masked,
options), `manifests/` (every Kubernetes object the program applies, one YAML file each), `policy.json`
(the policy pack's violations) and `checks.json` (the cross-layer checks' problems, components/checks:
schedulability, autoscaler ownership, AWS limits). The output directory is filled in a temporary sibling and
moved into place at the end, so a failure never leaves half an output behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.catalog import Catalog, load_catalog
from components.checks import Problem, run_all
from components.manifests.alerting import secret_config_keys
from components.mocks import RecordedResource, install
from components.policy_runner import Violation, evaluate
from components.policy_runner import to_json as violations_json
from components.spec import SpecSource
from components.spec.models import StackSpec
from components.stack import load_stack

PROJECT = "inferfleet"
"""Pulumi.yaml's project name: config keys are `inferfleet:<key>`."""
KUBERNETES_PREFIX = "kubernetes:"
CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")


@dataclass(frozen=True)
class Rendered:
    resources: list[RecordedResource]
    manifests: list[dict[str, Any]]
    violations: list[Violation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    """What the cross-layer checks found: each one a deploy that would fail or a cluster that would not run."""


def required_secret_config(spec: StackSpec) -> list[str]:
    """Secret config keys the program requires for this spec. Offline there is no stack config: render
    gives each a stand-in marked secret, so the program runs and the output shows only `[secret]`."""
    if not spec.observability.enabled:
        return []
    return list(secret_config_keys(spec.observability.alerting).values())


def set_stand_in_secrets(spec: StackSpec) -> None:
    """Stack config for the secrets the program requires, marked secret: offline there is none."""
    stand_ins = {f"{PROJECT}:{key}": f"(secret config {key}, set at deploy)" for key in required_secret_config(spec)}
    pulumi.runtime.set_all_config(stand_ins, secret_keys=list(stand_ins))


def run_program(source: SpecSource, catalog: Catalog) -> list[RecordedResource]:
    """The same program `pulumi up` runs, under recording mocks."""
    from components.platform import deploy  # the Pulumi layer loads only when a render is asked for

    spec = source.spec
    monitor = install(PROJECT, spec.environment, spec.aws.region)
    set_stand_in_secrets(spec)

    @pulumi.runtime.test
    def program() -> None:
        deploy(source, catalog)

    program()
    return monitor.recorded


def kubernetes_objects(resources: list[RecordedResource]) -> list[dict[str, Any]]:
    """Objects the program applies: typed Kubernetes resources and the objects of ConfigGroups.
    Helm charts are listed in resources.json with their pinned versions (no helm binary offline)."""
    objects: list[dict[str, Any]] = []
    for resource in resources:
        if resource.type == CONFIG_GROUP:
            objects += [obj for obj in resource.inputs.get("objs", []) if isinstance(obj, dict)]
        elif (
            resource.type.startswith(KUBERNETES_PREFIX)
            and resource.custom
            and resource.type not in HELM_TYPES
            and "kind" in resource.inputs
        ):
            objects.append(dict(resource.inputs))
    return objects


def render(source: SpecSource, catalog: Catalog | None = None,
           policy_overrides: dict[str, Any] | None = None) -> Rendered:
    """Run the program and the policy pack on what it registers (levels for the spec's environment)."""
    catalog = catalog or load_catalog()
    resources = run_program(source, catalog)
    manifests = kubernetes_objects(resources)
    return Rendered(resources=resources, manifests=manifests,
                    violations=evaluate(resources, source.spec, policy_overrides),
                    problems=run_all([r.to_json() for r in resources], manifests, catalog))


def _manifest_file_name(index: int, obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace") or "cluster"
    name = str(metadata.get("name", "unnamed"))
    return f"{index:03d}-{namespace}-{obj.get('kind', 'Object')}-{name}.yaml".replace("/", "_")


LEADING_KEYS = ("apiVersion", "kind", "metadata", "spec")
"""Recorded inputs come back from Pulumi's protobuf structs in no particular order; manifests read
best in Kubernetes' usual order: these first, everything else by name."""


def _ordered(value: Any, top: bool = False) -> Any:
    if isinstance(value, dict):
        leading = [key for key in LEADING_KEYS if top and key in value]
        rest = sorted(key for key in value if key not in leading)
        return {key: _ordered(value[key]) for key in [*leading, *rest]}
    if isinstance(value, list):
        return [_ordered(item) for item in value]
    return value


def write(rendered: Rendered, out_dir: Path) -> None:
    """Write into a temporary sibling directory, then swap it in: all or nothing."""
    out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        (staging / "resources.json").write_text(
            json.dumps([r.to_json() for r in rendered.resources], indent=2, sort_keys=True) + "\n"
        )
        (staging / "policy.json").write_text(violations_json(rendered.violations))
        (staging / "checks.json").write_text(json.dumps([vars(p) for p in rendered.problems], indent=2) + "\n")
        manifests = staging / "manifests"
        manifests.mkdir()
        for index, obj in enumerate(rendered.manifests):
            (manifests / _manifest_file_name(index, obj)).write_text(yaml.safe_dump(_ordered(obj, top=True), sort_keys=False))
        if out_dir.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-old-", dir=out_dir.parent))
            os.replace(out_dir, backup / "old")
            os.replace(staging, out_dir)
            shutil.rmtree(backup)
        else:
            os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def summary(rendered: Rendered) -> str:
    counts = Counter(resource.type for resource in rendered.resources)
    width = max(len(token) for token in counts)
    lines = [f"{token:<{width}}  {count}" for token, count in sorted(counts.items())]
    lines.append(f"{'resources':<{width}}  {len(rendered.resources)}")
    lines.append(f"{'kubernetes objects':<{width}}  {len(rendered.manifests)}")
    return "\n".join(lines)


def render_stack_file(path: str | Path, out_dir: str | Path,
                      policy_overrides: dict[str, Any] | None = None) -> Rendered:
    """Load (raising StackError with every located problem), render, check policies and write."""
    source = load_stack(path)
    rendered = render(source, policy_overrides=policy_overrides)
    write(rendered, Path(out_dir))
    return rendered
