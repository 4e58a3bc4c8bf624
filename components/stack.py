"""A stack file fully checked: the spec's own rules, then the rules that need the catalog."""

from __future__ import annotations

from pathlib import Path

from components.catalog import Catalog, load_catalog
from components.planner import check_catalog_facts
from components.spec import SpecSource, StackError, read_spec


def load_stack(path: str | Path, catalog: Catalog | None = None) -> SpecSource:
    """Read and check a stack file; raise StackError with every located problem."""
    source = read_spec(path)
    problems = check_catalog_facts(source.spec, catalog or load_catalog())
    if problems:
        raise StackError(source.locate(problems))
    return source
