"""What `make local` hands its servers, checked without starting them (make test): the service it picks,
the vLLM command line, the Prometheus config and rule files (through promtool, Prometheus' own checker),
and its one-line answers to a wrong stack or service."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.local import prometheus as prom
from components.local.processes import LocalError
from components.local.run import JOB
from components.local.service import local_service
from components.local.vllm_cpu import CPU_MAX_MODEL_LEN, REPO_ROOT
from components.local.vllm_server import vllm_argv
from components.manifests import monitoring
from components.manifests.autoscaling import REPLICA_SET_METRIC_LABEL, SERVICE_METRIC_LABEL
from components.manifests.vllm import SERVER_MODULE
from tests.manifests.promtool import promtool

DEV = REPO_ROOT / "stacks" / "dev.yaml"


def test_default_service_is_devs_vllm_service_and_its_first_replica_set() -> None:
    target = local_service(DEV, None)
    assert target.service.engine == "vllm" and target.service.name == "chat"
    assert target.replica_set.service is target.service
    assert [r["metadata"]["name"] for r in target.prometheus_rules()] == ["inferfleet-chat", "inferfleet-fleet"]


def test_vllm_runs_the_manifests_module_with_the_replica_sets_arguments_mapped_to_cpu(tmp_path: Path) -> None:
    target = local_service(DEV, None)
    argv = vllm_argv(Path("/venv/bin/python"), target.container_args, model_dir=tmp_path, port=1234)
    assert argv[:3] == ["/venv/bin/python", "-m", SERVER_MODULE]
    def value(flag: str) -> str:
        return argv[argv.index(flag) + 1]

    assert value("--model") == str(tmp_path) and value("--port") == "1234" and value("--host") == "127.0.0.1"
    assert int(value("--max-model-len")) <= CPU_MAX_MODEL_LEN
    assert "--served-model-name" in argv and "--gpu-memory-utilization" not in argv


def test_series_get_the_labels_the_pod_monitor_copies() -> None:
    target = local_service(DEV, None)
    labels = prom.pod_labels(target.replica_set)
    relabeled = {r["targetLabel"] for r in monitoring.pod_monitor("vllm")["spec"]["podMetricsEndpoints"][0]["relabelings"]}
    assert relabeled <= labels.keys()
    assert labels[SERVICE_METRIC_LABEL] == "chat" and labels[REPLICA_SET_METRIC_LABEL] == target.replica_set.name


def test_config_and_rule_files_pass_promtool(tmp_path: Path) -> None:
    target = local_service(DEV, None)
    rule_files = prom.write_rule_files(tmp_path / "rules", target.prometheus_rules())
    for path, rule in zip(rule_files, target.prometheus_rules(), strict=True):
        assert json.loads(path.read_text())["groups"] == rule["spec"]["groups"]  # exactly as shipped
    config = prom.write_config(tmp_path / "prometheus.yml", job=JOB, target="127.0.0.1:8000",
                               labels=prom.pod_labels(target.replica_set), interval=monitoring.SCRAPE_INTERVAL,
                               rule_files=rule_files)
    done = subprocess.run([promtool(), "check", "config", str(config)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_missing_or_non_vllm_service_is_named_with_the_ones_that_run() -> None:
    with pytest.raises(LocalError, match=r"no service named 'nope'; its vllm services: chat"):
        local_service(DEV, "nope")
    with pytest.raises(LocalError, match=r"service 'rag' runs on ray-serve; only vllm services run locally"):
        local_service(REPO_ROOT / "stacks" / "prod.yaml", "rag")
    with pytest.raises(LocalError, match="no stack file at"):
        local_service(REPO_ROOT / "stacks" / "missing.yaml", None)


def test_command_answers_a_wrong_service_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "components.local", "--service", "nope", "--once", "--work", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("inferfleet local: ") and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1
