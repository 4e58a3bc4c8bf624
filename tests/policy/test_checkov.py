"""checkov on the rendered Kubernetes manifests of every example stack (issue 6, section 4).

Every failed check must be accepted, with its reason, in policy/checkov_skips.yaml; every skip
there must still be needed; and a deliberately privileged container must make the scan fail, so
this test can fail at all. checkov runs from .venv-checkov (scripts/checkov_venv.sh), offline.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.tooling import missing_tool

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS = ("dev", "staging", "prod")
SKIPS_FILE = REPO_ROOT / "policy" / "checkov_skips.yaml"
STAMP_NAME = ".inferfleet-stamp"  # written by scripts/checkov_venv.sh only after a working install
RENDER_TIMEOUT_S = 300
CHECKOV_TIMEOUT_S = 300
# Offline: no Prisma Cloud mapping or policy download, and nothing uploaded.
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE"}
CHECKOV_ARGS = ["--skip-download", "--framework", "kubernetes", "-o", "json"]


@dataclass(frozen=True)
class Finding:
    check_id: str
    check_name: str
    resource: str  # checkov's id: Kind.namespace.name
    file: str

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({self.file}): {self.check_name}"


@dataclass(frozen=True)
class Skip:
    id: str
    reason: str
    objects: tuple[str, ...] = ("*",)

    def covers(self, finding: Finding) -> bool:
        return finding.check_id == self.id and any(fnmatch.fnmatchcase(finding.resource, p) for p in self.objects)


def load_skips(path: Path = SKIPS_FILE) -> list[Skip]:
    entries = yaml.safe_load(path.read_text())["skips"]
    return [Skip(e["id"], " ".join(e["reason"].split()), tuple(e.get("objects", ["*"]))) for e in entries]


def unaccepted(findings: list[Finding], skips: list[Skip]) -> list[Finding]:
    return [f for f in findings if not any(s.covers(f) for s in skips)]


def checkov_binary() -> Path:
    """.venv-checkov's checkov; skips the test when missing, fails under CI=true (CI builds it)."""
    venv = REPO_ROOT / os.environ.get("CHECKOV_VENV", ".venv-checkov")
    binary = venv / "bin" / "checkov"
    if binary.exists() and (venv / STAMP_NAME).exists():
        return binary
    missing_tool(f"{venv} is missing or incomplete: build it with scripts/checkov_venv.sh")


def start_checkov(binary: Path, manifests: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(binary), *CHECKOV_ARGS, "-d", str(manifests)],
        env={**os.environ, **CHECKOV_ENV},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect_findings(process: subprocess.Popen[str], manifests: Path) -> list[Finding]:
    """checkov exits 1 when a check fails, so the JSON report, not the exit code, is the result."""
    stdout, stderr = process.communicate(timeout=CHECKOV_TIMEOUT_S)
    assert process.returncode in (0, 1), f"checkov exited {process.returncode} on {manifests}:\n{stderr[-4000:]}"
    report: Any = json.loads(stdout)
    if isinstance(report, list):  # one report per framework; only kubernetes was asked for
        report = next(r for r in report if r.get("check_type") == "kubernetes")
    summary = report["summary"]
    # A manifest checkov cannot parse is checked by nothing: that must not pass silently.
    assert summary["parsing_errors"] == 0, f"checkov could not parse manifests in {manifests}: {summary}"
    assert summary["resource_count"] > 0, f"checkov found no Kubernetes objects in {manifests}"
    return [
        Finding(f["check_id"], f["check_name"], f["resource"], Path(f["file_path"]).name)
        for f in report["results"]["failed_checks"]
    ]


def scan(binary: Path, manifests: Path) -> list[Finding]:
    return collect_findings(start_checkov(binary, manifests), manifests)


@pytest.fixture(scope="module")
def checkov() -> Path:
    return checkov_binary()


@pytest.fixture(scope="module")
def rendered(checkov: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each example stack rendered with the project's own command, the three in parallel (~20 s each)."""
    inferfleet = Path(sys.executable).with_name("inferfleet")
    out = tmp_path_factory.mktemp("checkov-render")
    processes = {
        env: subprocess.Popen(
            [str(inferfleet), "render", str(REPO_ROOT / "stacks" / f"{env}.yaml"), "--out", str(out / env)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for env in STACKS
    }
    manifests = {}
    for env, process in processes.items():
        output, _ = process.communicate(timeout=RENDER_TIMEOUT_S)
        directory = out / env / "manifests"
        # Exit 1 with manifests written is a mandatory policy violation: the policy tests' business.
        assert process.returncode in (0, 1) and any(directory.glob("*.yaml")), (
            f"inferfleet render {env} exited {process.returncode}:\n{output[-4000:]}"
        )
        manifests[env] = directory
    return manifests


@pytest.fixture(scope="module")
def findings(checkov: Path, rendered: dict[str, Path]) -> dict[str, list[Finding]]:
    processes = {env: start_checkov(checkov, directory) for env, directory in rendered.items()}
    return {env: collect_findings(process, rendered[env]) for env, process in processes.items()}


def test_skip_file_is_well_formed() -> None:
    skips = load_skips()
    assert skips, "an empty skip file should be deleted, not kept"
    ids = [s.id for s in skips]
    assert len(ids) == len(set(ids)), f"duplicate ids in {SKIPS_FILE.name}: {ids}"
    for skip in skips:
        assert re.fullmatch(r"CKV2?_K8S_\d+", skip.id), f"not a checkov Kubernetes check id: {skip.id}"
        assert len(skip.reason) >= 30, f"{skip.id}: give a reason specific to this project"


@pytest.mark.parametrize("env", STACKS)
def test_no_failed_check_outside_the_skip_file(env: str, findings: dict[str, list[Finding]]) -> None:
    failures = unaccepted(findings[env], load_skips())
    assert not failures, (
        f"checkov checks failing on stacks/{env}.yaml's manifests and not accepted in {SKIPS_FILE.name} "
        "(fix components/manifests/, or accept with a reason):\n" + "\n".join(sorted(map(str, failures)))
    )


def test_every_skip_is_still_needed(findings: dict[str, list[Finding]]) -> None:
    everything = [finding for env in STACKS for finding in findings[env]]
    stale = [skip.id for skip in load_skips() if not any(skip.covers(f) for f in everything)]
    assert not stale, f"skips in {SKIPS_FILE.name} that no longer fail on any example stack; remove them: {stale}"


PRIVILEGED_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "insecure-probe", "namespace": "inferfleet-serving"},
    "spec": {
        "containers": [
            {
                "name": "shell",
                "image": "docker.io/library/busybox:1.37",
                "securityContext": {"privileged": True},
            }
        ]
    },
}


def test_a_privileged_container_fails_the_scan(
    checkov: Path, rendered: dict[str, Path], tmp_path: Path
) -> None:
    """The negative control: the same scan and skip file must reject an insecure extra manifest."""
    manifests = tmp_path / "manifests"
    shutil.copytree(rendered["dev"], manifests)
    (manifests / "999-inferfleet-serving-Pod-insecure-probe.yaml").write_text(yaml.safe_dump(PRIVILEGED_POD))
    failures = unaccepted(scan(checkov, manifests), load_skips())
    on_probe = {f.check_id for f in failures if f.resource == "Pod.inferfleet-serving.insecure-probe"}
    assert "CKV_K8S_16" in on_probe, f"checkov did not flag the privileged container: {sorted(on_probe)}"
