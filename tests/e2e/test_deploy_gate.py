"""The deploy gate's own commands against the real vLLM (conftest.py's session server): the Job's
arguments as components/manifests/gate.py writes them, with only the in-cluster address and the model name
replaced by the local ones. A service within its SLO passes; one outside it fails the gate."""

from __future__ import annotations

import subprocess
import sys

import pytest

from components.catalog import load_catalog
from components.manifests import gate
from components.manifests.stack import service_objects
from components.planner import plan_stack
from components.spec.models import SloSpec
from components.stack import load_stack
from e2e.local_servers import Server
from e2e.vllm_cpu import REPO_ROOT

IMAGE = "gate@sha256:" + "0" * 64


def _gate_commands(server: Server, slo: dict) -> list[list[str]]:
    """The chat service's gate Job, on a copy of prod whose chat workload fits the tiny model, with `slo`."""
    spec = load_stack(REPO_ROOT / "stacks" / "prod.yaml").spec
    chat = next(s for s in spec.services if s.name == "chat")
    chat = chat.model_copy(update={
        "workload": chat.workload.model_copy(update={"input_tokens": 64, "output_tokens": 16}),
        "slo": SloSpec.model_validate(slo),
    })
    spec = spec.model_copy(update={
        "deploy_gate": spec.deploy_gate.model_copy(update={"num_prompts": 8, "concurrency": 2}),
        "services": [chat if s.name == "chat" else s for s in spec.services],
    })
    objects = service_objects(chat, spec, plan_stack(spec, load_catalog()), load_catalog()).all()
    pod = gate.gate_job(chat, spec, IMAGE, objects)["spec"]["template"]["spec"]
    local = {gate.target(chat): server.url, chat.model.name: server.served_name}
    return [[local.get(arg, arg) for arg in c["args"]] for c in [*pod.get("initContainers", []), *pod["containers"]]]


def _run(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "components.cli", *arguments], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.e2e
def test_the_gate_passes_a_service_within_its_slo(server: Server) -> None:
    commands = _gate_commands(server, {"ttftP99Ms": 120000, "itlP99Ms": 60000, "availability": 0.9})
    assert [c[0] for c in commands] == ["smoke", "bench"]
    for command in commands:
        done = _run(command)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.e2e
def test_the_gate_fails_a_service_outside_its_slo(server: Server) -> None:
    smoke, bench = _gate_commands(server, {"ttftP99Ms": 1, "availability": 0.9})
    assert _run(smoke).returncode == 0
    done = _run(bench)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BREACH" in done.stdout + done.stderr and "Traceback" not in done.stderr
