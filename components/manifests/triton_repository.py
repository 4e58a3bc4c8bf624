"""Writes a Triton service's model configuration as a model repository directory:

    python -m components.manifests.triton_repository STACK.yaml --service NAME --out DIR [--replica-set SET]

    DIR/<model>/config.pbtxt       Triton's ModelConfig, text format
    DIR/<model>/1/model.json       the vLLM backend's engine arguments (vllm backend only)

The files are the ones the Triton Deployment's ConfigMap carries (components/manifests/triton.py builds
both from the same functions), so CI can lint them, diff them between commits, load them into a real
tritonserver, or publish them to an S3 model repository, without rendering the whole stack. Other
backends' version directories (1/model.onnx, 1/model.plan) are weights: they stay in S3 and the pod
links them from the node cache.

A replica set is one shape of the service (its pools' GPUs, a canary's engine arguments), and the files
depend on it; `--replica-set` picks one, and by default the service's first (its preferred floor).

Atomic: the model's directory is written in full beside its destination, fsynced and renamed into
place, so a reader of DIR (tritonserver polling it, a sync job) sees the previous complete directory
or the new one, never a file half-written or one file of a new pair next to one of the old.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from components.catalog import Catalog, load_catalog
from components.manifests.placement import ReplicaSet, replica_sets
from components.manifests.triton import config_files, model_name, repository_path
from components.planner import plan_stack
from components.spec import StackError
from components.spec.models import StackSpec
from components.stack import load_stack

PROGRAM = "python -m components.manifests.triton_repository"


class RepositoryError(Exception):
    """A request the stack cannot answer (unknown service, not a Triton service, unknown replica set)."""


def select_replica_set(spec: StackSpec, catalog: Catalog, service_name: str, replica_set: str | None) -> ReplicaSet:
    """The named replica set of a Triton service, or its first; errors list what the stack offers."""
    services = {service.name: service for service in spec.services}
    if service_name not in services:
        raise RepositoryError(f"no service {service_name!r} in the stack (services: {', '.join(services) or 'none'})")
    service = services[service_name]
    if service.engine != "triton":
        raise RepositoryError(f"service {service_name!r} runs on {service.engine}, not triton")
    sets = replica_sets(service, spec, plan_stack(spec, catalog))
    if replica_set is None:
        return sets[0]
    for candidate in sets:
        if candidate.name == replica_set:
            return candidate
    raise RepositoryError(
        f"service {service_name!r} has no replica set {replica_set!r} (replica sets: {', '.join(s.name for s in sets)})"
    )


def model_files(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, str]:
    """Path under the model's directory -> content, for one replica set: the ConfigMap's files, laid
    out as the pod lays them out."""
    return {repository_path(name): text for name, text in config_files(replica_set, catalog).items()}


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_model_directory(out: Path, model: str, files: dict[str, str]) -> Path:
    """Write `files` (paths relative to the model's directory) as out/<model>, replacing it whole."""
    out.mkdir(parents=True, exist_ok=True)
    destination = out / model
    staging = Path(tempfile.mkdtemp(prefix=f".{model}.tmp-", dir=out))
    try:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        for directory in sorted({p.parent for p in staging.rglob("*")}, key=lambda p: len(p.parts), reverse=True):
            _fsync_directory(directory)
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700; a model repository is read by another user
        if destination.exists():
            # Two renames: the old directory steps aside, the new one takes its name. Between them the
            # model is briefly absent, never partial; the old copy is deleted only once the new is in place.
            retired = Path(tempfile.mkdtemp(prefix=f".{model}.old-", dir=out))
            os.replace(destination, retired / model)
            os.replace(staging, destination)
            shutil.rmtree(retired)
        else:
            os.replace(staging, destination)
        _fsync_directory(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def build_repository(stack: str | Path, service: str, out: Path, replica_set: str | None = None) -> Path:
    """Load and check the stack, then write the service's model directory under `out`; its path."""
    catalog = load_catalog()
    spec = load_stack(stack, catalog).spec
    chosen = select_replica_set(spec, catalog, service, replica_set)
    return write_model_directory(out, model_name(chosen.service), model_files(chosen, catalog))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n\n")[0])
    parser.add_argument("stack", help="stack file, e.g. stacks/prod.yaml")
    parser.add_argument("--service", required=True, help="a service with engine: triton")
    parser.add_argument("--out", required=True, type=Path, help="model repository directory to write into")
    parser.add_argument("--replica-set", help="one of the service's replica sets (default: its first)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """0 written; 1 an invalid stack or a service/replica set it does not have (one line each); 2 usage."""
    args = build_parser().parse_args(argv)
    try:
        written = build_repository(args.stack, args.service, args.out, args.replica_set)
    except StackError as error:
        for problem in error.problems:
            print(problem)
        return 1
    except RepositoryError as error:
        print(f"{args.stack}: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{PROGRAM}: cannot write {args.out}: {error}", file=sys.stderr)
        return 1
    for path in sorted(p for p in written.rglob("*") if p.is_file()):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
