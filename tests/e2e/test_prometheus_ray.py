"""A real Prometheus scrapes a real Ray Serve serving a real vLLM engine, and evaluates every PromQL the stack
generates for a Ray Serve service.

The Ray side of test_prometheus_vllm.py: Ray exports Serve's metrics and, under Ray Serve LLM, vLLM's engine
metrics through its own metrics agent, under names of its own (`ray_serve_*`, `ray_vllm_*`, counters with
`_total`, Ray's labels added). A query on a wrong name is not an error in PromQL, it is a blank panel or an
alert that can never fire. So this test

- starts a Ray head (`ray start`, .venv-vllm from scripts/vllm_cpu_venv.sh) on loopback and deploys on it, from a
  Serve config, the model application the manifests generate for prod's Ray Serve service: its name, route
  prefix, model id and Serve autoscaling options, with the engine swapped for `ray_vllm_app` (vLLM's engine
  with Ray Serve LLM's stat logger; Ray 2.54's `ray.serve.llm` cannot import the pinned vLLM) on the tiny
  model, and one replica;
- starts Prometheus (scripts/install_prometheus.sh) scraping Ray's metrics port with the labels the serving
  PodMonitor gives a pod of that service's first worker group, loading the rules generated for the service;
- sends streaming and plain completions, a repeated long prompt (a prefix-cache hit), a burst that outgrows a
  deliberately small KV cache (preemptions), and prompts longer than the engine takes (500s);
- checks that every Ray metric name in components/manifests/metric_names.py is scraped, that the series carry
  the labels the queries select on, and that every dashboard and rule expression about the service evaluates
  through the HTTP API and returns series (alerts: evaluate; the error-budget page alert must fire on the 500s).

Rules and panels added for Ray Serve services later are picked up by that selection with no change here.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml

from components.catalog import Catalog, load_catalog
from components.manifests import alerts
from components.manifests import metric_names as m
from components.manifests import serving as s
from components.manifests.autoscaling import REPLICA_SET_METRIC_LABEL, REVISION_METRIC_LABEL, SERVICE_METRIC_LABEL
from components.manifests.dashboards import dashboard_expressions
from components.manifests.placement import ReplicaSet, replica_sets
from components.manifests.ray_serve import LLM_BUILDER, ray_serve_objects
from components.planner import plan_stack
from components.planner.plan import StackPlan
from components.spec.models import ServiceSpec, StackSpec
from components.stack import load_stack
from e2e.local_servers import REQUEST_TIMEOUT_S, free_port, post, start, stop, wait_ready
from e2e.ray_cluster import RayCluster, deploy, ray_bin, ray_cluster
from e2e.test_prometheus_vllm import Prometheus, expression_failures, prometheus_binary, reads, unscraped
from e2e.vllm_cpu import CPU_MAX_MODEL_LEN, LOOPBACK, REPO_ROOT

STACK = REPO_ROOT / "stacks" / "prod.yaml"
SCRAPE_INTERVAL = "1s"
JOB = "ray"
POD_ORDINAL = 0
PROMETHEUS_STARTUP_S = 60
DEPLOY_TIMEOUT_S = 900
"""vLLM's engine starts in a Serve replica in about 2 minutes on 2 loaded cores (compile warm-up included);
the bound only stops a hang, so it is set for a machine busy with other jobs too."""
DATA_TIMEOUT_S = 90
RAY_EXPORT_S = 10
"""Ray's agent gathers the workers' metrics every few seconds; a series shows up in the scrape that late."""

APP_IMPORT_PATH = "ray_vllm_app:build_app"
DEPLOYMENT = "VllmEngine"
"""ray_vllm_app.DEPLOYMENT (that module needs ray, which the main venv does not have); Serve refuses a config
whose `deployments` names a deployment the application lacks, so a mismatch fails the deploy."""
KV_BLOCKS = 16
"""The engine's KV cache, in blocks of the CPU backend's 128 tokens: 2048 tokens, so six sequences growing
to 600 tokens each cannot all fit and vLLM preempts some (`num_preemptions` is a counter Ray only exports
once it has counted one), while one full-length (1024-token) sequence still fits, as vLLM requires."""
CPU_ENGINE_KWARGS: dict[str, Any] = {
    "max_model_len": CPU_MAX_MODEL_LEN,
    "dtype": "bfloat16",
    "enable_prefix_caching": True,
    "num_gpu_blocks_override": KV_BLOCKS,
}
"""The tiny model's engine on CPU. The generated engine_kwargs size a GPU replica (tensor parallelism, GPU
memory, lengths of the real model), which the e2e vLLM tests check through vLLM's parser; here only the
names of the metrics matter, and prefix caching (on in prod's `rag`) makes the hit counter count."""
STREAMS = 3
STREAM_MAX_TOKENS = 16
PREEMPTION_BURST = 6
PREEMPTION_MAX_TOKENS = 600
PREEMPTION_TRIES = 3
"""Bursts sent until Ray exports a preemption: the sequences of one burst overlap on the engine unless the
machine is so loaded that they arrive seconds apart (seen once with two test runs on two cores)."""
FAILURES = 3
BUSY_MAX_TOKENS = 64
"""500s, the first one alone: Ray creates an error counter's series with its first export, so a rate() sees only
the increments after that sample; the others are sent once the series exists."""
REPEATED_PROMPT = " ".join(["The quick brown fox jumps over the lazy dog."] * 30)
"""Longer than one 128-token KV block, so its second run reuses the first one's cached block."""
TOO_LONG_PROMPT = "fox " * (2 * CPU_MAX_MODEL_LEN)
"""More tokens than max_model_len: the engine refuses it, and Serve answers 500."""

Kind = Literal["dashboard", "record", "alert"]
RAY_METRIC = re.compile(r"(?<![\w:])ray_(?:serve|vllm)_\w+")
RECORD = re.compile(r"inferfleet:[\w:]+")
NO_DATA_EXPECTED: dict[str, str] = {
    f'{m.VLLM_FINISHED_REASON_LABEL}="{m.VLLM_FINISHED_ERROR}"': "vLLM counts a request finished with reason "
    "`error` only on an internal engine error, which no request here can cause (the 500s are prompts the engine "
    "refuses before scheduling them), and Ray exports a counter series only from its first increment.",
}
"""text in an expression -> why it may return no series here. Keep it short: every entry is a query the test
cannot show to be about live series."""
ERROR_PAGE_SLO = "errors"
"""The SLI whose page alert the injected 500s must trip (alerts.slis: `errors`)."""


# --- what is checked ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stack:
    spec: StackSpec
    plan: StackPlan
    catalog: Catalog
    service: ServiceSpec
    replica_set: ReplicaSet


@dataclass(frozen=True)
class Expression:
    kind: Kind
    name: str
    expr: str
    labels: dict[str, str]

    def no_data_reason(self) -> str | None:
        return next((reason for text, reason in NO_DATA_EXPECTED.items() if text in self.expr), None)


def prod_stack() -> Stack:
    """prod and its first Ray Serve service, scraped as a pod of that service's first worker group."""
    catalog = load_catalog()
    spec = load_stack(STACK, catalog).spec
    plan = plan_stack(spec, catalog)
    service = next(svc for svc in spec.services if svc.engine == "ray-serve")
    first = replica_sets(service, spec, plan)[0]
    return Stack(spec, plan, catalog, service, first)


def _is_ray_name(value: object) -> bool:
    return isinstance(value, str) and value.startswith("ray_")


def ray_metric_names() -> dict[str, str]:
    """Every Ray metric name metric_names.py spells: its `ray_...` constants and, when it describes Ray Serve
    LLM's vLLM series (`RAY_SERVE_LLM`), each series name in it (not its settings, such as a window)."""
    names = {key: value for key, value in vars(m).items() if _is_ray_name(value)}
    llm = getattr(m, "RAY_SERVE_LLM", None)
    if llm is not None:
        names |= {f"RAY_SERVE_LLM.{f.name}": getattr(llm, f.name) for f in fields(llm)
                  if _is_ray_name(getattr(llm, f.name))}
    return names


def _rules(stack: Stack) -> list[dict[str, Any]]:
    return [r for group in alerts.service_groups(stack.service, stack.spec, stack.plan, stack.catalog)
            for r in group["rules"]]


def selected_expressions(stack: Stack) -> list[Expression]:
    """Every dashboard target and rule that reads a Ray metric, and every rule of the Ray Serve service
    (its SLO records and alerts over them)."""
    rules = _rules(stack)
    records = {r["record"] for r in rules if "record" in r}
    found = [Expression("dashboard", name, expr, {})
             for name, expr in dashboard_expressions(stack.spec, stack.plan, stack.catalog)
             if RAY_METRIC.search(expr) or any(reads(expr, record) for record in records)]
    service_rules = {(r.get("record") or r["alert"], r["expr"]) for r in rules}
    for obj in alerts.prometheus_rules(stack.spec, stack.plan, stack.catalog):
        for group in obj["spec"]["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule["alert"]
                if (name, rule["expr"]) in service_rules or RAY_METRIC.search(rule["expr"]):
                    kind: Kind = "record" if "record" in rule else "alert"
                    found.append(Expression(kind, name, rule["expr"], dict(rule.get("labels", {}))))
    return found


def serve_config(stack: Stack, model_dir: Path) -> dict[str, Any]:
    """The generated model application of the service's stable RayService, as its Serve config has it, with
    the engine swapped for `ray_vllm_app` on the tiny model and one replica (one engine on 2 cores)."""
    ray_service = next(obj for obj in ray_serve_objects(stack.service, stack.spec, stack.plan, stack.catalog)
                       if obj["kind"] == "RayService" and obj["metadata"]["name"] == stack.service.name)
    generated = yaml.safe_load(ray_service["spec"]["serveConfigV2"])
    llm_app = next(app for app in generated["applications"] if app["import_path"] == LLM_BUILDER)
    (llm_config,) = llm_app["args"]["llm_configs"]
    options = dict(llm_config["deployment_config"])
    if "autoscaling_config" in options:
        options["autoscaling_config"] = {**options["autoscaling_config"], "min_replicas": 1, "max_replicas": 1}
    else:
        options["num_replicas"] = 1
    return {"applications": [{
        "name": llm_app["name"],
        "route_prefix": llm_app["route_prefix"],
        "import_path": APP_IMPORT_PATH,
        "args": {"model": str(model_dir), "served_model_name": llm_config["model_loading_config"]["model_id"],
                 "engine_kwargs": CPU_ENGINE_KWARGS},
        "deployments": [{"name": DEPLOYMENT, **options}],
    }]}


def target_labels(stack: Stack) -> dict[str, str]:
    """What the serving PodMonitor puts on every series of a pod of the worker group."""
    rs = stack.replica_set
    return {
        "namespace": s.SERVING_NAMESPACE,
        "pod": f"{rs.name}-{POD_ORDINAL}",
        SERVICE_METRIC_LABEL: stack.service.name,
        REVISION_METRIC_LABEL: rs.revision,
        REPLICA_SET_METRIC_LABEL: rs.name,
    }


def write_config(work: Path, stack: Stack, metrics_url: str) -> Path:
    """prometheus.yml (JSON is YAML) and the service's rule groups, exactly as generated."""
    groups = alerts.service_groups(stack.service, stack.spec, stack.plan, stack.catalog)
    rules = work / "rules.yml"
    rules.write_text(json.dumps({"groups": groups}))
    config = work / "prometheus.yml"
    config.write_text(json.dumps({
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rules)],
        "scrape_configs": [{
            "job_name": JOB,
            "static_configs": [{"targets": [metrics_url.removeprefix("http://")], "labels": target_labels(stack)}],
        }],
    }))
    return config


# --- traffic ------------------------------------------------------------------------------------


def _completion(url: str, model: str, prompt: str, max_tokens: int, *, stream: bool = False,
                ignore_eos: bool = False) -> int:
    """POST /v1/completions; the HTTP status (the body is read to the end, so a stream finishes)."""
    request = post(f"{url}/v1/completions", {"model": model, "prompt": prompt, "max_tokens": max_tokens,
                                             "stream": stream, "ignore_eos": ignore_eos})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def exported_total(cluster: RayCluster, name: str, *matchers: str) -> float:
    """The sum of the metric's series in Ray's scrape now whose labels include every `label="value"` matcher."""
    with urllib.request.urlopen(f"{cluster.metrics_url}/metrics", timeout=30) as response:
        lines = response.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines
               if line.startswith(name + "{") and all(matcher in line for matcher in matchers))


def exported_until(cluster: RayCluster, done: Callable[[float], bool], name: str, *matchers: str) -> float:
    """Ray's total for the metric once `done` accepts it, or the last total seen when Ray's export time has
    passed: Serve's proxy and the workers report to the agent every few seconds."""
    deadline = time.monotonic() + RAY_EXPORT_S + DATA_TIMEOUT_S
    while not done(found := exported_total(cluster, name, *matchers)) and time.monotonic() < deadline:
        time.sleep(1)
    return found


def wait_exported(cluster: RayCluster, total: float, name: str, *matchers: str) -> None:
    """Until Ray's scrape counts `total`."""
    found = exported_until(cluster, lambda value: value == total, name, *matchers)
    assert found == total, f"{name}{matchers}: Ray exports {found}, not {total}"


def send_traffic(cluster: RayCluster, model: str) -> None:
    """Every kind of request whose series the queries read, checked as it goes."""
    url = cluster.serve_url
    for i in range(STREAMS):
        assert _completion(url, model, f"Say something, take {i}.", STREAM_MAX_TOKENS, stream=True) == 200
    for _ in range(2):
        assert _completion(url, model, REPEATED_PROMPT, 4) == 200
    preemptions = m.RAY_SERVE_LLM.preemptions
    assert preemptions is not None
    for attempt in range(PREEMPTION_TRIES):
        with concurrent.futures.ThreadPoolExecutor(PREEMPTION_BURST) as pool:
            statuses = list(pool.map(
                lambda i: _completion(url, model, f"Count to a thousand, {attempt}.{i}:", PREEMPTION_MAX_TOKENS,
                                      ignore_eos=True),
                range(PREEMPTION_BURST)))
        assert statuses == [200] * PREEMPTION_BURST, statuses
        if exported_until(cluster, lambda value: value > 0, preemptions) > 0:
            break
    else:
        pytest.fail(f"{PREEMPTION_TRIES} bursts of {PREEMPTION_BURST} sequences, and Ray exports no {preemptions}")
    errors = (m.RAY_SERVE_HTTP_ERRORS, 'error_code="500"')
    assert _completion(url, model, TOO_LONG_PROMPT, 4) == 500
    wait_exported(cluster, 1, *errors)
    for _ in range(FAILURES - 1):
        assert _completion(url, model, TOO_LONG_PROMPT, 4) == 500
    wait_exported(cluster, FAILURES, *errors)


@contextlib.contextmanager
def engine_kept_busy(cluster: RayCluster, model: str) -> Iterator[None]:
    """One streamed completion after another while the data is awaited: vLLM sets its gauges only while the
    engine steps, and Ray exports a gauge only if it was set since the previous export, so a burst that ends
    between two of Ray's exports (seen on a loaded machine) would leave no gauge in any scrape. Successes
    only: the error ratio the alerts read stays above their thresholds (FAILURES of a few dozen requests)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            _completion(cluster.serve_url, model, "Keep the engine busy:", BUSY_MAX_TOKENS, stream=True, ignore_eos=True)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        yield
    finally:
        stop.set()
        worker.join(timeout=REQUEST_TIMEOUT_S)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Stack:
    return prod_stack()


@pytest.fixture(scope="module")
def cluster(stack: Stack, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """Ray with the service's model application deployed and running on the tiny model."""
    ray_bin("python")  # skip (fail in CI) before any work when .venv-vllm is missing
    prometheus_binary()
    work = tmp_path_factory.mktemp("ray-serve")
    with ray_cluster(work, VLLM_CPU_KVCACHE_SPACE="1") as ray:
        deploy(ray, serve_config(stack, tiny_model), work, DEPLOY_TIMEOUT_S)
        yield ray


@dataclass(frozen=True)
class Run:
    """Prometheus after the traffic, and when the traffic began: queries are judged over that window."""

    prom: Prometheus
    since: float

    def query_range(self, expr: str) -> dict[str, Any]:
        """The API's whole answer for the expression at every second since the traffic began.

        Over the window, not at one instant: Ray 2.54 exports a gauge only in the first scrape after a worker
        reported it (its OpenTelemetry recorder clears gauge observations once read; workers report every
        few seconds), and vLLM sets its gauges only while the engine works. So a gauge series is present in
        some scrapes and stale in the others, and an instant query may miss it while a panel or a rule over
        time sees it."""
        params = urllib.parse.urlencode({"query": expr, "start": f"{self.since:.3f}", "end": f"{time.time():.3f}",
                                         "step": "1"})
        try:
            with urllib.request.urlopen(f"{self.prom.url}/api/v1/query_range?{params}", timeout=60) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            return json.load(error)

    def has_data(self, expr: str) -> bool:
        answer = self.query_range(expr)
        return answer["status"] == "success" and bool(answer["data"]["result"])


@pytest.fixture(scope="module")
def prometheus(cluster: RayCluster, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Prometheus scraping Ray, after the traffic and the data it left."""
    work = tmp_path_factory.mktemp("prometheus-ray")
    port = free_port()
    argv = [str(prometheus_binary()), f"--config.file={write_config(work, stack, cluster.metrics_url)}",
            f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address={LOOPBACK}:{port}"]
    process = start(argv, work / "prometheus.log")
    try:
        prom = Prometheus(f"http://{LOOPBACK}:{port}", work / "prometheus.log")
        wait_ready(f"{prom.url}/-/ready", process, prom.log, "Prometheus", PROMETHEUS_STARTUP_S)
        run = Run(prom, time.time())
        send_traffic(cluster, stack.service.model.name)
        traffic_counted = time.time()  # Ray's scrape had every counted request by now (send_traffic waits for it)
        with engine_kept_busy(cluster, stack.service.model.name):
            wait_for_data(run, stack, traffic_counted)
        yield run
    finally:
        stop(process)


def wait_for_data(run: Run, stack: Stack, traffic_counted: float) -> None:
    """Until every name and every expression that should have data has it, and Prometheus has scraped Ray
    since `traffic_counted` (so a counter holds every request, not the count of the scrape before), or the
    deadline (the tests then say which did not): Ray exports every few seconds, rates need two samples,
    records one evaluation."""
    expected = [e.expr for e in selected_expressions(stack) if e.kind != "alert" and e.no_data_reason() is None]
    expected += [f"{name} or {m.bucket(name)}" for name in ray_metric_names().values()]
    expected.append(f"timestamp(up) > {traffic_counted:.3f}")
    deadline = time.monotonic() + DATA_TIMEOUT_S + RAY_EXPORT_S
    while time.monotonic() < deadline:
        if all(run.has_data(expr) for expr in expected):
            return
        time.sleep(1)


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.e2e
def test_every_ray_metric_name_is_scraped(prometheus: Run) -> None:
    missing, scraped = unscraped(prometheus.prom, ray_metric_names())
    assert not missing, (
        f"metric_names.py names Ray metrics the pinned Ray and vLLM do not expose: {missing}; Ray exposes: "
        f"{sorted(n for n in scraped if n.startswith('ray_serve') or n.startswith('ray_vllm'))}"
    )


@pytest.mark.e2e
def test_ray_series_carry_the_labels_the_queries_select_on(prometheus: Run, stack: Stack) -> None:
    """The target labels survive Ray's own; Serve labels the application and the status; the 500s are counted
    as errors of the application; vLLM's series name the served model."""
    prom = prometheus.prom
    app = f'{m.RAY_APPLICATION_LABEL}="{stack.service.name}"'
    for label, value in target_labels(stack).items():
        assert prom.series(f'{m.RAY_SERVE_HTTP_REQUESTS}{{{app},{label}="{value}"}}'), (label, value)
    errors = prom.series(f'{m.RAY_SERVE_HTTP_ERRORS}{{{app},error_code="500"}}')
    assert sum(float(e["value"][1]) for e in errors) == FAILURES, errors
    statuses = {e["metric"].get("status_code") for e in prom.series(f"{m.RAY_SERVE_HTTP_REQUESTS}{{{app}}}")}
    assert {"200", "500"} <= statuses, statuses
    healthy = prometheus.query_range(f"{m.RAY_SERVE_REPLICA_HEALTHY}{{{app}}}")["data"]["result"]
    assert {e["metric"].get(m.RAY_DEPLOYMENT_LABEL) for e in healthy} == {DEPLOYMENT}, healthy
    model = f'model_name="{stack.service.model.name}"'
    assert prom.series(f"{m.ray_vllm(m.VLLM_TTFT)}_count{{{model}}}")


@pytest.mark.e2e
def test_expressions_evaluate_and_return_series(prometheus: Run, stack: Stack) -> None:
    """Each evaluates without error at every second of the run; each but the alerts has series in it."""
    selected = selected_expressions(stack)
    assert {e.kind for e in selected} >= {"dashboard", "record", "alert"}, selected
    failures = expression_failures(selected, prometheus.query_range)
    assert not failures, "\n".join(failures)


@pytest.mark.e2e
def test_error_budget_page_alert_fires_on_the_500s(prometheus: Run, stack: Stack) -> None:
    """Requests failed at far more than 14.4 times the budget: the fast-burn condition must hold (the alert's
    `for` keeps it pending, which is not what is tested here)."""
    page = [e for e in selected_expressions(stack)
            if e.kind == "alert" and e.labels.get("slo") == ERROR_PAGE_SLO and e.labels.get("severity") == alerts.PAGE]
    assert page, "no error-budget page alert for the Ray Serve service"
    deadline = time.monotonic() + DATA_TIMEOUT_S  # the last 500s reach the records a scrape and an evaluation late
    for e in page:
        while not prometheus.has_data(e.expr) and time.monotonic() < deadline:
            time.sleep(1)
        records = {name: prometheus.query_range(name)["data"]["result"] for name in sorted(set(RECORD.findall(e.expr)))}
        assert prometheus.has_data(e.expr), f"{e.name} does not fire on {FAILURES} 500s:\n{e.expr}\n{records}"


def test_selection_covers_every_ray_expression() -> None:
    """Pure (make test): no dashboard or rule query on a Ray metric escapes the e2e check, and no vLLM-server
    query is selected (this Prometheus scrapes only Ray)."""
    stack = prod_stack()
    selected = {(e.name, e.expr) for e in selected_expressions(stack)}
    every = [*dashboard_expressions(stack.spec, stack.plan, stack.catalog),
             *alerts.rule_expressions(stack.spec, stack.plan, stack.catalog)]
    ray = [(name, expr) for name, expr in every if RAY_METRIC.search(expr)]
    assert ray and set(ray) <= selected, set(ray) - selected
    vllm_server = [name for name, expr in selected
                   if any(reads(expr, n) for n in (m.VLLM_TTFT, m.VLLM_HTTP_REQUESTS, m.VLLM_KV_CACHE_USAGE))]
    assert not vllm_server, vllm_server


def test_ray_metric_names_follow_rays_naming() -> None:
    """Pure: what the real scrape showed (counters `_total` after Ray's `ray_` prefix, vLLM's `:` as `_`)."""
    names = ray_metric_names()
    assert names
    for key, name in names.items():
        assert re.fullmatch(r"ray_[a-z0-9_]+", name), (key, name)
    assert m.ray_vllm("vllm:prompt_tokens_total") == "ray_vllm_prompt_tokens_total"
