"""The deploy gate's Job: a valid Job whose commands the project's own CLI parses, re-run exactly when
what it checks changes, and a stack ConfigMap the gate's loader reads back as the same spec."""

from __future__ import annotations


import pytest

from components.cli import build_parser
from components.manifests import gate
from components.manifests.scheduling import pool_labels, system_node_labels
from components.manifests.stack import service_objects
from components.stack import load_stack
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests.node_selection import admits
from tests.manifests.validators import validate_object

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/inferfleet/prod/gate:gate-1@sha256:" + "a" * 64


@pytest.fixture(scope="module")
def prod_source():
    return load_stack("stacks/prod.yaml")


def _job(service, spec, plan, catalog):
    return gate.gate_job(service, spec, IMAGE, service_objects(service, spec, plan, catalog).all())


def test_every_gate_job_is_a_valid_job_on_the_system_pool_without_an_api_token(prod, catalog):
    spec, plan = prod
    assert spec.deploy_gate.enabled
    for service in spec.services:
        job = _job(service, spec, plan, catalog)
        validate_object(job, KUBERNETES_VERSION)
        pod = job["spec"]["template"]["spec"]
        assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False and pod["nodeSelector"] == {"inferfleet.io/pool": "system"}
        assert admits(pod, system_node_labels())
        assert not any(admits(pod, pool_labels(pool)) for pool in spec.gpu_pools)
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert container["image"] == IMAGE and container["securityContext"]["runAsNonRoot"] is True


def test_the_commands_parse_with_the_projects_own_cli(prod, catalog):
    spec, plan = prod
    parser = build_parser()
    for service in spec.services:
        pod = _job(service, spec, plan, catalog)["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            parsed = parser.parse_args(container["args"])
            assert parsed.command in ("smoke", "bench")


def test_openai_engines_smoke_then_bench_against_their_slo_triton_smokes(prod, catalog):
    spec, plan = prod
    by_name = {s.name: _job(s, spec, plan, catalog)["spec"]["template"]["spec"] for s in spec.services}
    chat = by_name["chat"]
    assert [c["args"][0] for c in chat["initContainers"]] == ["smoke"]
    (bench,) = chat["containers"]
    assert bench["args"][:2] == ["bench", "http://chat.inferfleet-serving.svc:8000"]
    chat_spec = next(s for s in spec.services if s.name == "chat")
    flag = lambda name: bench["args"][bench["args"].index(name) + 1]  # noqa: E731
    assert flag("--input-tokens") == str(chat_spec.workload.input_tokens)
    assert flag("--output-tokens") == str(chat_spec.workload.output_tokens)
    assert float(flag("--slo-ttft-p99-ms")) == chat_spec.slo.ttft_p99_ms
    assert float(flag("--slo-itl-p99-ms")) == chat_spec.slo.itl_p99_ms
    assert float(flag("--slo-availability")) == chat_spec.slo.availability
    assert "--stack" not in bench["args"], "no copy of the stack goes into the cluster"
    rerank = by_name["rerank"]
    assert "initContainers" not in rerank
    assert rerank["containers"][0]["args"] == ["smoke", "rerank.inferfleet-serving.svc:8001", "--engine", "triton"]


def test_the_job_is_renamed_exactly_when_what_it_checks_changes(prod, catalog):
    spec, plan = prod
    chat = next(s for s in spec.services if s.name == "chat")
    objects = service_objects(chat, spec, plan, catalog).all()
    name = gate.gate_job(chat, spec, IMAGE, objects)["metadata"]["name"]
    assert name == gate.gate_job(chat, spec, IMAGE, objects)["metadata"]["name"]
    assert name.startswith("chat-gate-") and len(name) <= 63
    objects[0]["metadata"]["labels"]["changed"] = "yes"
    assert gate.gate_job(chat, spec, IMAGE, objects)["metadata"]["name"] != name
    assert gate.gate_job(chat, spec, IMAGE.replace("a" * 64, "b" * 64), service_objects(chat, spec, plan, catalog).all())[
        "metadata"]["name"] != name


def test_pulumi_waits_past_the_jobs_deadline_and_replaces_a_failed_gate(prod, catalog):
    spec, plan = prod
    annotations = _job(spec.services[0], spec, plan, catalog)["metadata"]["annotations"]
    assert int(annotations["pulumi.com/timeoutSeconds"]) > spec.deploy_gate.timeout_seconds
    assert annotations["pulumi.com/replaceUnready"] == "true"


def test_the_gate_carries_nothing_of_the_stack_but_its_own_arguments(prod, catalog):
    """The gate once mounted the whole stack document (tags, every service's engine arguments...) from a
    ConfigMap: the Job now needs no volume and the cluster holds no copy of the stack."""
    spec, plan = prod
    for service in spec.services:
        pod = _job(service, spec, plan, catalog)["spec"]["template"]["spec"]
        assert "volumes" not in pod
        assert all("volumeMounts" not in c for c in [*pod.get("initContainers", []), *pod["containers"]])
