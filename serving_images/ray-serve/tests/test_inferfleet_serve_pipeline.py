"""The pipeline application on a real Ray Serve (.venv-vllm, scripts/vllm_cpu_venv.sh), deployed from the Serve
config the manifests generate for it (components/manifests/ray_serve.py `pipeline_application`): prod's `rag`
service with its stages pointed at this image's `Retriever` and `Reranker`, one replica each on this 2-core
machine. Beside it, at `/`, the model's application: `echo_llm`, which answers with the prompt it got, so the
tests read what the pipeline sent the model.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.catalog import load_catalog
from components.manifests.ray_serve import pipeline_application
from components.manifests.traffic import PIPELINE_ROUTE
from components.spec.models import PipelineStageSpec, ServiceSpec
from components.stack import load_stack
from e2e.local_servers import free_port, post
from e2e.ray_cluster import RayCluster, deploy, ray_bin, ray_cluster
from e2e.vllm_cpu import LOOPBACK, REPO_ROOT

pytestmark = pytest.mark.e2e

IMAGE_DIR = Path(__file__).resolve().parents[1]
TESTS_DIR = Path(__file__).parent
DEPLOY_TIMEOUT_S = 240
REQUEST_TIMEOUT_S = 60
STAGES = {"retrieve": "inferfleet_serve.stages:Retriever", "rerank": "inferfleet_serve.stages:Reranker"}
CORPUS = [
    {"id": "spot", "text": "Spot GPU nodes get a two minute interruption notice; the handler drains them first."},
    {"id": "warm", "text": "A warm pool keeps stopped GPU instances with images pre-pulled, so a node joins fast."},
    {"id": "kv", "text": "vLLM preempts sequences when the KV cache is full and recomputes them later."},
    {"id": "cost", "text": "Spot capacity costs less than on-demand capacity for the same instance type."},
]
RERANK_TOP_K = 2
RAY_EXPORT_S = 30
"""Ray's workers report their metrics to the node's agent every few seconds (10 s by default)."""


def rag_service() -> ServiceSpec:
    """prod's Ray Serve service with this image's stages, one replica and one CPU each."""
    catalog = load_catalog()
    spec = load_stack(REPO_ROOT / "stacks" / "prod.yaml", catalog).spec
    service = next(svc for svc in spec.services if svc.engine == "ray-serve" and svc.pipeline)
    stages = [PipelineStageSpec.model_validate({"name": name, "importPath": path, "numCpus": 1,
                                                "replicas": {"min": 1, "max": 1}})
              for name, path in STAGES.items()]
    return service.model_copy(update={"pipeline": stages})


def serve_config(service: ServiceSpec) -> dict[str, Any]:
    """The generated pipeline application, and the echo model at `/` under the service's application name."""
    model_app = {"name": service.name, "route_prefix": "/", "import_path": "echo_llm:build_app"}
    return {"applications": [model_app, pipeline_application(service)]}


@pytest.fixture(scope="module")
def service() -> ServiceSpec:
    return rag_service()


@pytest.fixture(scope="module")
def cluster(service: ServiceSpec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    ray_bin("python")  # skip (fail in CI) when .venv-vllm is missing
    work = tmp_path_factory.mktemp("ray-pipeline")
    corpus = work / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    paths = (IMAGE_DIR, TESTS_DIR)
    # The pipeline reads the model's address from its workers' environment, so the Serve port is chosen
    # here and handed to both (in a RayService it is the fixed serve port, the pipeline's default).
    serve_port = free_port()
    with ray_cluster(work, paths, serve_port, INFERFLEET_CORPUS=str(corpus), INFERFLEET_RERANK_TOP_K=str(RERANK_TOP_K),
                     INFERFLEET_LLM_URL=f"http://{LOOPBACK}:{serve_port}") as ray:
        deploy(ray, serve_config(service), work, DEPLOY_TIMEOUT_S, paths)
        yield ray


def chat(cluster: RayCluster, body: dict[str, Any]) -> tuple[int, str]:
    request = post(f"{cluster.serve_url}{PIPELINE_ROUTE}/v1/chat/completions", body)
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_answer_comes_from_the_model_with_the_reranked_documents(cluster: RayCluster) -> None:
    status, text = chat(cluster, {"model": "echo", "messages": [
        {"role": "user", "content": "How much notice does a spot GPU node get before the interruption?"}]})
    assert status == 200, text
    answer = json.loads(text)
    assert answer["documents"][0] == "spot" and len(answer["documents"]) == RERANK_TOP_K, answer
    prompt = answer["choices"][0]["message"]["content"]
    assert prompt.startswith("system: Answer using these documents"), prompt
    assert f"[spot] {CORPUS[0]['text']}" in prompt
    assert prompt.rstrip().endswith("user: How much notice does a spot GPU node get before the interruption?")


def test_a_streamed_answer_is_relayed_as_the_model_streams_it(cluster: RayCluster) -> None:
    status, text = chat(cluster, {"model": "echo", "stream": True,
                                  "messages": [{"role": "user", "content": "Why does vLLM preempt sequences?"}]})
    assert status == 200, text
    events = [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    streamed = "".join(json.loads(e)["choices"][0]["delta"]["content"] for e in events[:-1])
    assert "[kv] vLLM preempts sequences" in streamed


def test_a_question_no_document_matches_goes_to_the_model_as_asked(cluster: RayCluster) -> None:
    status, text = chat(cluster, {"model": "echo", "messages": [{"role": "user", "content": "zebra?"}]})
    assert status == 200, text
    answer = json.loads(text)
    assert answer["documents"] == []
    assert answer["choices"][0]["message"]["content"] == "user: zebra?"


def test_a_request_without_a_user_message_is_refused_in_openai_shape(cluster: RayCluster) -> None:
    status, text = chat(cluster, {"model": "echo", "messages": [{"role": "system", "content": "hi"}]})
    assert status == 400, text
    assert "no user message" in json.loads(text)["error"]["message"]


def test_the_models_errors_reach_the_client(cluster: RayCluster) -> None:
    status, text = chat(cluster, {"model": "other", "messages": [{"role": "user", "content": "spot?"}]})
    assert status == 404, text
    assert "no model 'other'" in json.loads(text)["error"]["message"]


SCRAPE_TIMEOUT_S = 60
"""One scrape of Ray's metrics agent; seen taking over 30 s while the whole e2e suite ran on 2 cores."""


def test_each_stage_is_a_deployment_named_after_it(cluster: RayCluster) -> None:
    """Serve's per-deployment request counter, from Ray's metrics port: every stage and the ingress served the
    requests above under its own name (the name the RayService's `deployments` overrides look for). A counter,
    not the health gauge: Ray 2.54 exports a gauge only in the first scrape after a worker reported it."""
    assert chat(cluster, {"model": "echo", "messages": [{"role": "user", "content": "warm pool?"}]})[0] == 200
    app = f'application="{rag_service().name}-pipeline"'
    deadline = time.monotonic() + RAY_EXPORT_S + SCRAPE_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{cluster.metrics_url}/metrics", timeout=SCRAPE_TIMEOUT_S) as response:
                scrape = response.read().decode()
        except (TimeoutError, urllib.error.URLError):
            scrape = ""  # the metrics agent answers slowly on a loaded machine: try again until the deadline
        served = {line.split('deployment="')[1].split('"')[0] for line in scrape.splitlines()
                  if line.startswith("ray_serve_deployment_request_counter_total{") and app in line
                  and float(line.rsplit(" ", 1)[1]) > 0}
        if served == {*STAGES, "Pipeline"} or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert served == {*STAGES, "Pipeline"}, served
