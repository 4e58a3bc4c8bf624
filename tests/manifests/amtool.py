"""Finding amtool (Debian's `prometheus-alertmanager`, installed by scripts/install_prometheus.sh) for the
Alertmanager configuration checks: skip locally when it is missing, fail in CI, where the set-up installs it."""

from __future__ import annotations

import shutil

from tests.tooling import missing_tool


def amtool() -> str:
    found = shutil.which("amtool")
    if found:
        return found
    missing_tool("amtool is missing: install it with scripts/install_prometheus.sh")
