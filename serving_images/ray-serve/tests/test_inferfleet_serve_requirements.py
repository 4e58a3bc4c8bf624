"""The image and its requirements agree with the manifests and with the venv the tests ran in (that one is
`e2e`: .venv-vllm is built by `make e2e`)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from components.manifests.versions import RAY_LLM_IMAGE, RAY_VERSION
from e2e.ray_cluster import ray_bin

IMAGE_DIR = Path(__file__).resolve().parents[1]
REQUIREMENTS = IMAGE_DIR / "requirements.txt"
DOCKERFILE = IMAGE_DIR / "Dockerfile"


def pins() -> dict[str, str]:
    found = {}
    for line in REQUIREMENTS.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([\w.]+)", line.strip())
        if match:
            found[match[1].lower()] = match[2]
    return found


def test_every_requirement_is_pinned_and_ray_is_the_manifests_release() -> None:
    lines = [ln for ln in REQUIREMENTS.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(pins()) == len(lines), lines
    assert pins()["ray"] == RAY_VERSION


def test_the_dockerfile_builds_on_the_manifests_ray_llm_image_by_a_required_digest() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(rf"^ARG RAY_VERSION={re.escape(RAY_VERSION)}$", text, re.MULTILINE)
    (base,) = re.findall(r"^FROM (\S+)$", text, re.MULTILINE)
    image, _, digest = base.replace("${RAY_VERSION}", RAY_VERSION).partition("@")
    assert image == RAY_LLM_IMAGE
    assert digest == "${RAY_DIGEST:?build-arg-RAY_DIGEST-is-required}"


@pytest.mark.e2e
def test_the_pins_are_what_the_tests_ray_runs() -> None:
    """The versions the pipeline tests ran with are the ones requirements.txt states."""
    python = ray_bin("python")
    code = "import json, sys, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    done = subprocess.run([str(python), "-c", code, *pins()], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(done.stdout) == pins()
