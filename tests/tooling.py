"""The rule for tests that need a tool the project's scripts install (a venv, promtool, Prometheus):
skip with the reason on a developer's machine, fail in CI, where `make e2e` installs every one of them
and a missing tool is a broken set-up, not a reason to pass."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def missing_tool(message: str) -> NoReturn:
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
