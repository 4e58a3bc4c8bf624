"""scripts/workloads.sh run for real against fake pulumi, aws and git: where the workloads stack runs, what the
runner is asked to do, and what its exit status says."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from components.phases import WORKLOADS_SUFFIX

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "workloads.sh"
RUNNER = {"projectName": "inferfleet-prod-workloads", "sourceBucket": "inferfleet-prod-deploy-123456789012",
          "logGroupName": "/aws/codebuild/inferfleet-prod-workloads", "region": "us-east-1"}

FAKE_PULUMI = """#!/usr/bin/env bash
echo "pulumi $*" >> "$CALLS"
if [ "$1 $2" = "stack output" ]; then
    [ "$RUNNER_JSON" != missing ] || exit 255
    echo "$RUNNER_JSON"
fi
"""
FAKE_GIT = """#!/usr/bin/env bash
echo "git $*" >> "$CALLS"
case "$1" in
    status) echo "$GIT_STATUS" ;;
    rev-parse) echo 0123456789abcdef0123456789abcdef01234567 ;;
    archive) shift; while [ $# -gt 0 ]; do if [ "$1" = -o ]; then echo bundle > "$2"; fi; shift; done ;;
esac
"""
FAKE_AWS = """#!/usr/bin/env bash
echo "aws $*" >> "$CALLS"
case "$1 $2" in
    "codebuild start-build") echo "inferfleet-prod-workloads:1111-2222" ;;
    "codebuild batch-get-builds")
        polls=$(( $(cat "$STATE" 2>/dev/null || echo 0) + 1 )); echo "$polls" > "$STATE"
        if [ "$polls" -lt 3 ]; then echo IN_PROGRESS; else echo "$FINAL_STATUS"; fi ;;
    "logs get-log-events")
        if grep -q -- "--next-token" <<<"$*"; then echo '{"events": [], "nextForwardToken": "t2"}';
        else echo '{"events": [{"message": "Previewing update (prod-workloads)\\n"}], "nextForwardToken": "t1"}'; fi ;;
esac
"""


def fake(bin_dir: Path, name: str, text: str) -> Path:
    path = bin_dir / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def run(tmp_path: Path, *args: str, runner: object = RUNNER, final: str = "SUCCEEDED",
        dirty: bool = False) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    env = {
        **os.environ,
        "PULUMI": str(fake(bin_dir, "pulumi", FAKE_PULUMI)),
        "AWS": str(fake(bin_dir, "aws", FAKE_AWS)),
        "GIT": str(fake(bin_dir, "git", FAKE_GIT)),
        "CALLS": str(calls),
        "STATE": str(tmp_path / "polls"),
        "RUNNER_JSON": runner if runner == "missing" else json.dumps(runner),
        "FINAL_STATUS": final,
        "GIT_STATUS": " M stacks/prod.yaml" if dirty else "",
        "INFERFLEET_POLL_SECONDS": "0",
    }
    done = subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_a_private_cluster_runs_in_the_runner_with_the_committed_head(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "preview", "prod")
    assert done.returncode == 0, done.stderr
    upload = next(c for c in calls if c.startswith("aws s3 cp"))
    key = re.search(r"s3://inferfleet-prod-deploy-123456789012/(sources/0123456789abcdef\S+\.tar\.gz)", upload)
    assert key, upload
    start = next(c for c in calls if "start-build" in c)
    assert "--project-name inferfleet-prod-workloads" in start
    assert f"--source-location-override inferfleet-prod-deploy-123456789012/{key[1]}" in start
    assert "name=INFERFLEET_COMMAND,value=preview,type=PLAINTEXT" in start
    assert sum("batch-get-builds" in c for c in calls) == 3, "polls until the build is no longer in progress"
    assert "Previewing update (prod-workloads)" in done.stderr, "the build's log is printed"
    assert not [c for c in calls if c.startswith("pulumi preview") or c.startswith("pulumi up")]


def test_a_failed_build_fails_the_run(tmp_path: Path) -> None:
    done, _ = run(tmp_path, "up", "prod", final="FAILED")
    assert done.returncode == 1
    assert "build inferfleet-prod-workloads:1111-2222: FAILED" in done.stderr


def test_uncommitted_changes_are_reported(tmp_path: Path) -> None:
    done, _ = run(tmp_path, "up", "prod", dirty=True)
    assert done.returncode == 0 and "uncommitted changes are not part of the run" in done.stderr


def test_a_public_cluster_runs_the_workloads_stack_here(tmp_path: Path) -> None:
    done, calls = run(tmp_path, "up", "dev", runner=None)
    assert done.returncode == 0, done.stderr
    assert (f"pulumi up --stack dev{WORKLOADS_SUFFIX} --policy-pack policy --policy-pack-config policy/config/dev.json"
            " --non-interactive --yes") in calls
    assert not [c for c in calls if c.startswith("aws ")]


def test_a_platform_stack_that_was_never_deployed_is_named(tmp_path: Path) -> None:
    done, _ = run(tmp_path, "up", "prod", runner="missing")
    assert done.returncode == 1 and "deploy it first (pulumi up -s prod)" in done.stderr
    done, _ = run(tmp_path, "preview", "prod", runner="missing")
    assert done.returncode == 0, "a PR adding an environment has no cluster to preview its workloads against"


@pytest.mark.parametrize("args", [(), ("deploy", "prod"), ("up",)])
def test_usage(tmp_path: Path, args: tuple[str, ...]) -> None:
    done, _ = run(tmp_path, *args)
    assert done.returncode == 2 and done.stderr.startswith("usage: scripts/workloads.sh")

