"""A real Prometheus scrapes the real vLLM server and evaluates every PromQL the stack generates for it.

What a unit test cannot show: that the dashboards' and alert rules' queries still match what the pinned
vLLM release exposes. A query on a metric or label that a release renamed is not an error in PromQL: it
returns nothing, and a dashboard goes blank or an alert can never fire. So this test

- starts Prometheus (Debian's `prometheus` package, scripts/install_prometheus.sh) on loopback, scraping
  conftest.py's vLLM server with the labels the serving PodMonitor gives a pod of prod's `chat` burst set,
  and loading the rules generated for `chat` (recording rules included) at a 1 s evaluation interval;
- sends streaming chat and plain completions while it scrapes;
- evaluates every dashboard target and rule expression about that service through the HTTP API: each
  must evaluate without error, and each must return series unless it is an alert (those must stay silent:
  nothing is breached) or it is listed in `NO_DATA_EXPECTED` with the reason;
- checks that every vLLM metric name in components/manifests/metric_names.py is among the names
  Prometheus scraped, so a rename fails here by name rather than as a blank panel in production.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from components.catalog import Catalog, load_catalog
from components.local import prometheus as local_prometheus
from components.local.prometheus import PROMETHEUS
from components.manifests import alerts
from components.manifests import metric_names as m
from components.manifests.autoscaling import SERVICE_METRIC_LABEL
from components.manifests.dashboards import dashboard_expressions
from components.manifests.placement import ReplicaSet, replica_sets
from components.planner import plan_stack
from components.planner.plan import StackPlan
from components.spec.models import ServiceSpec, StackSpec
from components.stack import load_stack
from e2e.local_servers import REQUEST_TIMEOUT_S, Server, free_port, log_tail, post, start, stop, wait_ready
from e2e.vllm_cpu import LOOPBACK, REPO_ROOT
from tests.tooling import missing_tool

STACK = REPO_ROOT / "stacks" / "prod.yaml"
SCRAPE_INTERVAL = "1s"
"""Scrape and rule evaluation: a rate needs two samples, so a short interval keeps the test short."""
JOB = "vllm"
POD_ORDINAL = 0
PROMETHEUS_STARTUP_S = 60
PROMETHEUS_OWN = ("up", "scrape_", "ALERTS", "inferfleet:")
"""Names Prometheus itself writes (target health, scrape stats, alert states, our recording rules)."""
DATA_TIMEOUT_S = 90
"""How long the series may take to appear after the requests (a few scrapes and rule evaluations)."""
REQUESTS_PER_KIND = 3
CHAT_MAX_TOKENS = 16
COMPLETION_MAX_TOKENS = 8

HISTOGRAM_SUFFIXES = ("", "_bucket", "_count", "_sum")
Kind = Literal["dashboard", "record", "alert"]

SERVER_ERRORS = f'{m.HTTP_STATUS_LABEL}="{m.HTTP_SERVER_ERROR}"'
NO_DATA_EXPECTED: dict[str, str] = {
    # text in the expression -> why it may return no series after a run without failures
    SERVER_ERRORS: "prometheus-fastapi-instrumentator creates an `http_requests_total` series for a status "
    "group only when a response of that group is sent; no request fails here, so the 5xx rate is empty, and "
    "so is every ratio over it (the inferfleet:slo_errors:* records divide it by all requests).",
}
"""The few expressions allowed to return nothing. Keep it short: every entry is a query the test
cannot show to be about live series."""


# --- what is checked ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expression:
    kind: Kind
    name: str
    expr: str

    def no_data_reason(self) -> str | None:
        return next((reason for text, reason in NO_DATA_EXPECTED.items() if text in self.expr), None)


@dataclass(frozen=True)
class Stack:
    spec: StackSpec
    plan: StackPlan
    catalog: Catalog
    service: ServiceSpec
    replica_set: ReplicaSet


def prod_stack() -> Stack:
    """prod and its first vLLM service, scraped as a pod of that service's burst set (the autoscaled one)."""
    catalog = load_catalog()
    spec = load_stack(STACK, catalog).spec
    plan = plan_stack(spec, catalog)
    service = next(svc for svc in spec.services if svc.engine == "vllm")
    burst = next(rs for rs in replica_sets(service, spec, plan) if rs.role == "burst")
    return Stack(spec, plan, catalog, service, burst)


def vllm_metric_names() -> dict[str, str]:
    """The metric names among metric_names.py's `VLLM_*` constants (the others name labels and values):
    vLLM's own carry its `vllm:` prefix, its HTTP counter ends in `_total`."""
    return {
        key: value for key, value in vars(m).items()
        if key.startswith("VLLM_") and isinstance(value, str) and (":" in value or value.endswith("_total"))
    }


def _mentions(expr: str, name: str) -> bool:
    """`name` as a whole metric name (so `http_requests_total` is not found in `ray_serve_num_http_requests_total`)."""
    return re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr) is not None


def reads(expr: str, name: str) -> bool:
    """The expression reads the metric, or its histogram's bucket, count or sum series."""
    return any(_mentions(expr, name + suffix) for suffix in HISTOGRAM_SUFFIXES)


def _names_of(stack: Stack) -> tuple[set[str], set[str]]:
    """The service's recording-rule names and alert names."""
    rules = [r for group in alerts.service_groups(stack.service, stack.spec, stack.plan, stack.catalog)
             for r in group["rules"]]
    return {r["record"] for r in rules if "record" in r}, {r["alert"] for r in rules if "alert" in r}


def selected_expressions(stack: Stack) -> list[Expression]:
    """Every dashboard target and rule about the vLLM service: it selects the service's series and reads
    a vLLM metric (histogram series included) or one of the service's recorded series."""
    records, alert_names = _names_of(stack)
    about_service = f'{SERVICE_METRIC_LABEL}="{stack.service.name}"'
    names = [*vllm_metric_names().values(), *records]
    candidates = [("dashboard", name, expr) for name, expr in dashboard_expressions(stack.spec, stack.plan, stack.catalog)]
    candidates += [("alert" if name in alert_names else "record", name, expr)
                   for name, expr in alerts.rule_expressions(stack.spec, stack.plan, stack.catalog)]
    return [
        Expression(kind, name, expr) for kind, name, expr in candidates  # type: ignore[arg-type]
        if about_service in expr and any(reads(expr, n) for n in names)
    ]


# --- Prometheus ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    def query(self, expr: str) -> dict[str, Any]:
        """The API's whole answer for an instant query at now: `status` is `success` or `error`."""
        params = urllib.parse.urlencode({"query": expr, "time": f"{time.time():.3f}"})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:  # 400/422: a parse or evaluation error, as JSON
            return json.load(error)

    def series(self, expr: str) -> list[dict[str, Any]]:
        answer = self.query(expr)
        assert answer["status"] == "success", (expr, answer)
        return answer["data"]["result"]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=30) as response:
            answer = json.load(response)
        assert answer["status"] == "success", (path, answer)
        return answer["data"]


def prometheus_binary() -> Path:
    """Skip without the binary; under CI=true fail, as a missing .venv-vllm does (vllm_cpu.vllm_python)."""
    binary = local_prometheus.prometheus_binary()
    if binary is not None:
        return binary
    missing_tool(f"{PROMETHEUS} is missing: install it with scripts/install_prometheus.sh")


def target_labels(stack: Stack) -> dict[str, str]:
    """What the serving PodMonitor puts on every series of a pod of the burst set in the cluster."""
    return local_prometheus.pod_labels(stack.replica_set, POD_ORDINAL)


def write_config(work: Path, stack: Stack, vllm_url: str) -> Path:
    """prometheus.yml and the service's rule groups, exactly as generated (the files `make local` writes too)."""
    groups = alerts.service_groups(stack.service, stack.spec, stack.plan, stack.catalog)
    shipped = [g for rule in alerts.prometheus_rules(stack.spec, stack.plan, stack.catalog) for g in rule["spec"]["groups"]]
    assert all(group in shipped for group in groups), "the service's groups are not those the PrometheusRules ship"
    rules = local_prometheus.write_rule_file(work / "rules.yml", groups)
    return local_prometheus.write_config(work / "prometheus.yml", job=JOB, target=vllm_url.removeprefix("http://"),
                                         labels=target_labels(stack), interval=SCRAPE_INTERVAL, rule_files=[rules])


@pytest.fixture(scope="module")
def stack() -> Stack:
    return prod_stack()


@pytest.fixture(scope="module")
def prometheus(server: Server, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping the server, after requests it saw being served and the data they left."""
    binary = prometheus_binary()
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    argv = local_prometheus.prometheus_argv(binary, config=write_config(work, stack, server.url), data=work / "data",
                                            address=f"{LOOPBACK}:{port}")
    process = start(argv, work / "prometheus.log")
    try:
        prom = Prometheus(f"http://{LOOPBACK}:{port}", work / "prometheus.log")
        wait_ready(f"{prom.url}/-/ready", process, prom.log, "Prometheus", PROMETHEUS_STARTUP_S)
        wait_for(prom, f'up{{job="{JOB}"}} == 1', "the vLLM target to be scraped")
        send_traffic(server)
        wait_for_data(prom, stack)
        yield prom
    finally:
        stop(process)


def wait_for(prom: Prometheus, expr: str, what: str) -> None:
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while not prom.series(expr):
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {DATA_TIMEOUT_S} s ({expr}):\n{log_tail(prom.log)}", pytrace=False)
        time.sleep(1)


def wait_for_data(prom: Prometheus, stack: Stack) -> None:
    """Until every expression that should have data has it, or the deadline (the test then says which
    did not): rates need two samples after the first request, records one evaluation after that."""
    expected = [e.expr for e in selected_expressions(stack) if e.kind != "alert" and e.no_data_reason() is None]
    expected += [f"{name} or {m.bucket(name)}" for name in vllm_metric_names().values()]
    deadline = time.monotonic() + DATA_TIMEOUT_S
    while time.monotonic() < deadline:
        if all(prom.query(expr).get("data", {}).get("result") for expr in expected):
            return
        time.sleep(1)


def send_traffic(server: Server) -> None:
    """Streaming chats (TTFT and inter-token gaps) and plain completions, one at a time (two CPU cores)."""
    for i in range(REQUESTS_PER_KIND):
        chat = post(f"{server.url}/v1/chat/completions", {
            "model": server.served_name, "messages": [{"role": "user", "content": f"Say something, take {i}."}],
            "max_tokens": CHAT_MAX_TOKENS, "stream": True,
        })
        with urllib.request.urlopen(chat, timeout=REQUEST_TIMEOUT_S) as response:
            assert response.status == 200
            response.read()
        completion = post(f"{server.url}/v1/completions", {
            "model": server.served_name, "prompt": f"The quick brown fox {i}", "max_tokens": COMPLETION_MAX_TOKENS,
        })
        with urllib.request.urlopen(completion, timeout=REQUEST_TIMEOUT_S) as response:
            assert response.status == 200
            response.read()


# --- the tests ----------------------------------------------------------------------------------


def unscraped(prometheus: Prometheus, names: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """The names (a histogram by its `_bucket` series) Prometheus has no series of, and every name it has."""
    scraped = set(prometheus.get("/api/v1/label/__name__/values"))
    return {key: name for key, name in names.items() if name not in scraped and m.bucket(name) not in scraped}, scraped


@pytest.mark.e2e
def test_every_vllm_metric_name_is_scraped(prometheus: Prometheus) -> None:
    missing, scraped = unscraped(prometheus, vllm_metric_names())
    assert not missing, (
        f"metric_names.py names metrics the pinned vLLM does not expose (renamed by a release?): {missing}; "
        f"vLLM exposes: {sorted(n for n in scraped if not n.startswith(PROMETHEUS_OWN))}"
    )


@pytest.mark.e2e
def test_vllm_series_carry_the_labels_the_queries_select_on(prometheus: Prometheus) -> None:
    for metric, label in ((m.VLLM_REQUEST_SUCCESS, m.VLLM_FINISHED_REASON_LABEL),
                          (m.VLLM_HTTP_REQUESTS, m.HTTP_STATUS_LABEL)):
        values = {series["metric"].get(label) for series in prometheus.series(metric)}
        assert values - {None}, f"{metric} has no `{label}` label: {values}"


def expression_failures(selected: list[Expression], answer_of: Callable[[str], dict[str, Any]]) -> list[str]:
    """The expressions Prometheus refuses, and those that should have data (not alerts, not the ones with a
    known reason for none) but return no series; `answer_of` is an instant or a range query."""
    failures = []
    for e in selected:
        answer = answer_of(e.expr)
        if answer["status"] != "success":
            failures.append(f"{e.kind} {e.name}: {answer.get('errorType')}: {answer.get('error')}\n  {e.expr}")
        elif e.kind != "alert" and e.no_data_reason() is None and not answer["data"]["result"]:
            failures.append(f"{e.kind} {e.name}: no series\n  {e.expr}")
    return failures


@pytest.mark.e2e
def test_expressions_evaluate_and_return_series(prometheus: Prometheus, stack: Stack) -> None:
    selected = selected_expressions(stack)
    assert {e.kind for e in selected} == {"dashboard", "record", "alert"}, selected
    failures = expression_failures(selected, prometheus.query)
    assert not failures, "\n".join(failures)


@pytest.mark.e2e
def test_alerts_stay_silent(prometheus: Prometheus, stack: Stack) -> None:
    """Nothing failed and nothing saturated the server: an alert expression with series would page for nothing."""
    firing = {e.name: prometheus.series(e.expr) for e in selected_expressions(stack) if e.kind == "alert"}
    assert firing and not any(firing.values()), {name: series for name, series in firing.items() if series}


def test_selection_covers_every_vllm_expression() -> None:
    """Pure (make test): no dashboard or rule query on a vLLM metric escapes the e2e check."""
    stack = prod_stack()
    selected = {(e.name, e.expr) for e in selected_expressions(stack)}
    every = [*dashboard_expressions(stack.spec, stack.plan, stack.catalog),
             *alerts.rule_expressions(stack.spec, stack.plan, stack.catalog)]
    vllm = [(name, expr) for name, expr in every if any(reads(expr, n) for n in vllm_metric_names().values())]
    assert vllm and set(vllm) <= selected, set(vllm) - selected
    assert not [name for name, expr in selected if "ray_serve" in expr], "a Ray Serve query was selected"
