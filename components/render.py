"""`inferfleet render`: the Pulumi program run in-process under mocks, written out for review.

Writes `resources.json` (every resource: type, name, parent, provider, inputs with secrets masked,
options), `manifests/` (every Kubernetes object the program applies, one YAML file each), `policy.json`
(the policy pack's violations) and `checks.json` (the cross-layer checks' problems, components/checks:
schedulability, autoscaler ownership, AWS limits).

The output is reproducible: the same spec gives the same bytes (resources in URN order, parents first; manifests
named by namespace, kind and name; violations and problems sorted), so the diff of two renders shows only real
changes. The output directory carries a marker (`.inferfleet-render`); render replaces only a directory that carries
it (or an empty one) and refuses anything else (`OutputRefused`, a usage error) before touching it. The new output is
written in a hidden sibling and swapped in by renames that are undone on failure: see `write`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

from components.catalog import Catalog, load_catalog
from components.checks import Problem, run_all
from components.manifests.alerting import secret_config_keys
from components.mocks import RecordedResource, install, owned_event_loops
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
    """As the runtime registered them (an order that varies from run to run); `write` puts them in tree_order."""
    manifests: list[dict[str, Any]]
    violations: list[Violation] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    """What the cross-layer checks found: each one a deploy that would fail or a cluster that would not run."""
    environment: str = ""
    """The spec's environment (the policies' levels are its column of the level table, or prod's)."""


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
    with owned_event_loops():  # every event loop the runtime runs on is closed here, even when the program fails
        monitor = install(PROJECT, spec.environment, spec.aws.region)
        set_stand_in_secrets(spec)

        @pulumi.runtime.test
        def program() -> None:
            deploy(source, catalog)

        program()
    return monitor.recorded


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def tree_order(resources: Iterable[RecordedResource]) -> list[RecordedResource]:
    """Resources in an order that does not depend on when Pulumi's asyncio runtime registered them: each parent
    before its children, siblings by URN (then by content, should two ever share a URN)."""
    resources = list(resources)
    urns = {resource.urn for resource in resources}
    children: dict[str, list[RecordedResource]] = defaultdict(list)
    for resource in resources:
        parent = resource.parent if resource.parent in urns and resource.parent != resource.urn else ""
        children[parent].append(resource)

    def siblings(parent: str) -> list[RecordedResource]:
        return sorted(children.pop(parent, []), key=lambda r: (r.urn, _canonical(r.to_json())), reverse=True)

    ordered: list[RecordedResource] = []
    stack = siblings("")
    while stack:
        resource = stack.pop()
        ordered.append(resource)
        stack += siblings(resource.urn)
    for rest in children.values():  # unreachable only through a parent cycle, which URNs cannot form; kept anyway
        ordered += sorted(rest, key=lambda r: (r.urn, _canonical(r.to_json())))
    return ordered


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
    ordered = tree_order(resources)  # what runs on them, and so what they report, is the same from run to run
    manifests = kubernetes_objects(ordered)
    violations = evaluate(ordered, source.spec, policy_overrides)
    problems = run_all([r.to_json() for r in ordered], manifests, catalog)
    return Rendered(resources=resources, manifests=manifests,
                    violations=sorted(violations, key=lambda v: (v.policy, v.type, v.name, v.message, v.enforcement)),
                    problems=sorted(problems, key=lambda p: (p.check, p.subject, p.message)),
                    environment=source.spec.environment)


FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
FILE_NAME_MAX = 200
"""Below the 255 bytes most file systems allow, with room for a disambiguating suffix and `.yaml`."""


def _manifest_stem(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace") or "cluster"
    stem = FILE_NAME_UNSAFE.sub("_", f"{namespace}-{obj.get('kind', 'Object')}-{metadata.get('name', 'unnamed')}")
    if len(stem) > FILE_NAME_MAX:
        stem = f"{stem[:FILE_NAME_MAX - 9]}-{hashlib.sha256(stem.encode()).hexdigest()[:8]}"
    return stem


def manifest_files(manifests: Sequence[dict[str, Any]]) -> dict[str, str]:
    """File name -> YAML text for each object: `<namespace or cluster>-<kind>-<name>.yaml`. Objects whose names
    collide (also when compared case-insensitively, as on macOS) get `_2`, `_3`... in the order of their text
    (`_` is in no Kubernetes name, so a suffix never meets another object's own name)."""
    entries = sorted((_manifest_stem(obj), yaml.safe_dump(_ordered(obj, top=True), sort_keys=False))
                     for obj in manifests)
    files: dict[str, str] = {}
    taken: set[str] = set()
    for stem, text in entries:
        name, number = f"{stem}.yaml", 1
        while name.casefold() in taken:
            number += 1
            name = f"{stem}_{number}.yaml"
        taken.add(name.casefold())
        files[name] = text
    return dict(sorted(files.items()))


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


MARKER = ".inferfleet-render"
"""The file that makes a directory a render's output, and so replaceable by the next render."""
MARKER_TEXT = ("inferfleet-render 1\n"
               "# written by `inferfleet render`: the next render to this directory replaces it whole\n")
MARKER_FIRST_LINE = "inferfleet-render "
WORK_SUFFIX = re.compile(r"\.render-[a-z0-9_]{8}")
"""A render's hidden work directory beside its target: `.<target>.render-XXXXXXXX` (tempfile.mkdtemp's names)."""


class OutputRefused(Exception):
    """`--out` names something render must not replace; nothing was touched (a usage error, exit 2)."""


def is_render_output(path: Path) -> bool:
    """Whether a directory carries render's marker (a previous render, or a render's work directory)."""
    marker = path / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        with marker.open("rb") as file:
            return file.read(len(MARKER_FIRST_LINE)) == MARKER_FIRST_LINE.encode()
    except OSError:
        return False


def _repository_of(path: Path) -> Path | None:
    for directory in (path, *path.parents):
        if (directory / ".git").exists():
            return directory
    return None


def check_output_dir(out_dir: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """The resolved output directory, or OutputRefused (one line) when render must not replace it: anything but a
    directory, a non-empty directory without the marker, a directory holding one of the render's inputs, the
    current directory or one above it, a repository (the current directory's or an input's) or one above it."""
    shown = f"--out {out_dir}"
    given = Path(out_dir)
    if given.is_symlink():
        raise OutputRefused(f"{shown}: is a symbolic link; render writes only to a directory of its own")
    target = given.resolve()
    if target.exists() and not target.is_dir():
        raise OutputRefused(f"{shown}: exists and is not a directory; "
                            "render writes a directory and never replaces a file")
    existing = next((parent for parent in target.parents if parent.exists()), None)
    if existing is not None and not existing.is_dir():
        raise OutputRefused(f"{shown}: {existing} is not a directory")
    cwd = Path.cwd().resolve()
    repositories = {_repository_of(cwd), *(_repository_of(Path(path).resolve().parent) for path in inputs)}
    for repository in sorted(r for r in repositories if r is not None):  # (the next two rules cover these too;
        if target == repository or target in repository.parents:       # this one says what is at stake)
            raise OutputRefused(f"{shown}: is the repository {repository} or a directory above it")
    if target == cwd or target in cwd.parents:
        raise OutputRefused(f"{shown}: is the current directory or one above it; "
                            "name a directory of its own, e.g. out/<env>")
    for path in inputs:
        resolved = Path(path).resolve()
        if resolved == target or target in resolved.parents:
            raise OutputRefused(f"{shown}: holds {path}, which this render reads; "
                                "the output directory is replaced whole")
    if target.is_dir() and not is_render_output(target) and any(target.iterdir()):
        raise OutputRefused(f"{shown}: is not empty and has no {MARKER} marker, so it is not a previous render; "
                            "name a new or empty directory")
    return target


def _discard(work: Path, target: Path) -> None:
    """Remove a work directory, its marker last. If its `old` is the only copy of the previous output (a failure
    or a kill between the two renames of `_swap`), put it back in place first; failing that, leave it for the next
    render to restore."""
    old = work / "old"
    if old.is_dir() and not os.path.lexists(target):
        try:
            os.replace(old, target)
        except OSError:
            return
    shutil.rmtree(work / "new", ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    (work / MARKER).unlink(missing_ok=True)
    try:
        work.rmdir()
    except OSError:
        pass


def clean_leftovers(target: Path) -> None:
    """What an interrupted render of this target left beside it: its marked work directories (a killed render's
    half-written `new`, or the previous output in `old`, which goes back in place when the target is missing).
    Two renders of one target at the same time are not supported: the second would remove the first's work."""
    if not target.parent.is_dir():
        return
    pattern = re.compile(re.escape(f".{target.name}") + WORK_SUFFIX.pattern)
    for sibling in sorted(target.parent.iterdir()):
        if (pattern.fullmatch(sibling.name) and not sibling.is_symlink() and sibling.is_dir()
                and is_render_output(sibling)):
            _discard(sibling, target)


def _swap(new: Path, target: Path, old: Path) -> None:
    """Put `new` at `target`. Two renames in one directory, the first undone if the second fails: at every
    point either the previous output or the new one is at `target` (or, only if the process is killed between
    the two, the previous one is in the work directory, which the next render puts back)."""
    if not os.path.lexists(target):
        os.replace(new, target)
        return
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        try:
            os.replace(old, target)
        except OSError:
            pass  # the previous output stays in the work directory: `_discard` retries, else the next render
        raise


def _write_files(rendered: Rendered, directory: Path) -> None:
    """Every file of an output, each in an order of its own content (`tree_order`, sorted lists, manifest names)."""
    def put(path: Path, text: str) -> None:
        path.write_bytes(text.encode("utf-8"))  # the same bytes whatever the locale and platform (no \r\n)

    put(directory / MARKER, MARKER_TEXT)
    put(directory / "resources.json",
        json.dumps([r.to_json() for r in tree_order(rendered.resources)], indent=2, sort_keys=True) + "\n")
    violations = sorted(rendered.violations, key=lambda v: (v.policy, v.type, v.name, v.message, v.enforcement))
    put(directory / "policy.json", violations_json(violations))
    problems = sorted((asdict(p) for p in rendered.problems), key=lambda p: (p["check"], p["subject"], p["message"]))
    put(directory / "checks.json", json.dumps(problems, indent=2) + "\n")
    manifests = directory / "manifests"
    manifests.mkdir()
    for name, text in manifest_files(rendered.manifests).items():
        put(manifests / name, text)


def write(rendered: Rendered, out_dir: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """Write the output to `out_dir`, which must be new, empty or a previous render (`check_output_dir`):
    into `new` in a marked hidden work directory beside it, then swapped in (`_swap`); the work directory,
    with the previous output, is removed only after that. Leftovers of an interrupted render go first.

    Why renames and not an exchange: `renameat2(RENAME_EXCHANGE)` would swap in one step, but only on Linux
    and on the file systems that support it, so a fallback would be needed anyway, and it would be the path
    least exercised; a symbolic link swapped by `os.replace` would make every output a link, which archives,
    CI artifact uploads and Windows treat differently. Two renames with an undo are portable, and the one
    state they can leave (a kill between them) is recovered by the next render."""
    target = check_output_dir(out_dir, inputs)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputRefused(f"--out {out_dir}: cannot create {target.parent}: {error.strerror or error}") from None
    clean_leftovers(target)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.render-", dir=target.parent))
    try:
        (work / MARKER).write_bytes(MARKER_TEXT.encode("utf-8"))
        new = work / "new"
        new.mkdir()
        _write_files(rendered, new)
        _swap(new, target, work / "old")
    finally:
        _discard(work, target)
    return target


def summary(rendered: Rendered) -> str:
    counts = Counter(resource.type for resource in rendered.resources)
    width = max(len(token) for token in counts)
    lines = [f"{token:<{width}}  {count}" for token, count in sorted(counts.items())]
    lines.append(f"{'resources':<{width}}  {len(rendered.resources)}")
    lines.append(f"{'kubernetes objects':<{width}}  {len(rendered.manifests)}")
    return "\n".join(lines)


def render_stack_file(path: str | Path, out_dir: str | Path, policy_overrides: dict[str, Any] | None = None,
                      inputs: Sequence[str | Path] = ()) -> Rendered:
    """Check the output directory (OutputRefused), load (StackError with every located problem), render,
    check policies and write. `inputs`: other files the render reads, which the output must not hold."""
    inputs = [path, *inputs]
    check_output_dir(out_dir, inputs)  # before the program's seconds, and again when writing
    source = load_stack(path)
    rendered = render(source, policy_overrides=policy_overrides)
    write(rendered, out_dir, inputs)
    return rendered
