"""The Helm charts the platform installs, read from charts.yaml: one place for every chart version."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CHARTS_FILE = Path(__file__).with_name("charts.yaml")
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+$")
"""A released version, nothing Helm would resolve: no range, no wildcard, no pre-release."""


@dataclass(frozen=True)
class Chart:
    name: str
    repository: str
    chart: str
    version: str
    namespace: str
    hooks: bool = False
    app_version: str | None = None

    @property
    def is_oci(self) -> bool:
        return self.repository.startswith("oci://")

    @property
    def reference(self) -> str:
        """What Helm's `chart` argument takes: the full OCI reference, or the name within `repository`."""
        return f"{self.repository.rstrip('/')}/{self.chart}" if self.is_oci else self.chart

    @property
    def repository_opts(self) -> dict[str, str] | None:
        """Helm repository options; none for OCI charts, whose reference already says where they are."""
        return None if self.is_oci else {"repo": self.repository}


def _chart(name: str, entry: Any, source: Path) -> Chart:
    if not isinstance(entry, dict):
        raise ValueError(f"{source}: charts.{name}: expected a mapping")
    unknown = set(entry) - {"repository", "chart", "version", "namespace", "hooks", "appVersion"}
    if unknown:
        raise ValueError(f"{source}: charts.{name}: unknown keys {sorted(unknown)}")
    for key in ("repository", "chart", "version", "namespace"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"{source}: charts.{name}.{key}: a non-empty string is required")
    if not EXACT_VERSION.match(entry["version"]):
        raise ValueError(f"{source}: charts.{name}.version: {entry['version']!r} is not one exact released version")
    if not entry["repository"].startswith(("https://", "oci://")):
        raise ValueError(f"{source}: charts.{name}.repository: must be an https:// or oci:// location")
    hooks = entry.get("hooks", False)
    if not isinstance(hooks, bool):
        raise ValueError(f"{source}: charts.{name}.hooks: must be true or false")
    app_version = entry.get("appVersion")
    if app_version is not None and not isinstance(app_version, str):
        raise ValueError(f"{source}: charts.{name}.appVersion: must be a quoted string")
    return Chart(
        name=name,
        repository=entry["repository"],
        chart=entry["chart"],
        version=entry["version"],
        namespace=entry["namespace"],
        hooks=hooks,
        app_version=app_version,
    )


def load_charts(path: Path = CHARTS_FILE) -> dict[str, Chart]:
    """Every chart by name; raises ValueError naming the entry and key when the file is wrong."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("charts"), dict) or not data["charts"]:
        raise ValueError(f"{path}: expected a non-empty `charts:` mapping")
    return {name: _chart(name, entry, path) for name, entry in data["charts"].items()}


@cache
def charts() -> dict[str, Chart]:
    """The project's charts (charts.yaml), read once."""
    return load_charts()


def chart(name: str) -> Chart:
    try:
        return charts()[name]
    except KeyError:
        raise KeyError(f"no chart {name!r} in {CHARTS_FILE.name}; known: {sorted(charts())}") from None
