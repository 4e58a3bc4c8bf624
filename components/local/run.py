"""The local serving path, start to stop: vLLM and Prometheus up, `inferfleet smoke` and `bench` against
them, where to look printed, then serve until interrupted (or exit, with `once`).

Every server is registered for stopping the moment it starts, so an error, Ctrl-C or SIGTERM at any
step stops what was started, in reverse order, process group by process group.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from components import cli
from components.local import prometheus as prom
from components.local.processes import LOOPBACK, LocalError, free_port, log_tail, start, stop, wait_ready
from components.local.service import LocalService
from components.local.vllm_cpu import REPO_ROOT, installed_vllm_python, vllm_venv
from components.local.vllm_server import STARTUP_TIMEOUT_S, start_vllm, write_tiny_model
from components.manifests import metric_names as m
from components.manifests.autoscaling import REPLICA_SET_METRIC_LABEL, SERVICE_METRIC_LABEL
from components.manifests.monitoring import SCRAPE_INTERVAL

JOB = "vllm-engines"
"""The PodMonitor's name (`<engine>-engines`), which the operator's job is named after."""
PROMETHEUS_STARTUP_S = 60
SCRAPE_WAIT_S = 90
"""How long the bench's requests may take to show in Prometheus: a few scrapes at the PodMonitor's interval."""
WATCH_POLL_S = 1.0
SMOKE_ARGS = ("--engine", "vllm", "--max-tokens", "8")
BENCH_ARGS = ("--concurrency", "1,2", "--num-prompts", "4", "--input-tokens", "32", "--output-tokens", "16",
              "--ignore-eos")
"""A short load at two levels: enough to show the figures and put data behind the rules, in seconds on CPU.
No --stack: the service's SLO is for its GPUs, and its workload lengths exceed the CPU run's max length."""

@dataclass(frozen=True)
class Options:
    stack: Path
    service: str | None
    once: bool
    work: Path
    vllm_port: int = 0
    """0: a free port, so a local run never collides with what else listens here."""
    prometheus_port: int = 0


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def run(target: LocalService, options: Options) -> int:
    """Serve `target` locally until interrupted (or until the checks pass, with `once`); 0 on success.

    LocalError when a tool is missing, a server fails or a check fails; KeyboardInterrupt propagates
    once everything started is stopped.
    """
    python = installed_vllm_python()
    if python is None:
        raise LocalError(f"{vllm_venv()} is missing or incomplete: build it with scripts/vllm_cpu_venv.sh (make local does)")
    binary = prom.prometheus_binary()
    if binary is None:
        raise LocalError(f"no Prometheus server ({prom.PROMETHEUS}): install it with scripts/install_prometheus.sh "
                         "(make local does)")
    began = time.monotonic()
    run_dir = options.work / f"{options.stack.stem}-{target.service.name}"
    run_dir.mkdir(parents=True, exist_ok=True)
    vllm_port = options.vllm_port or free_port()  # chosen first: Prometheus' config names it
    vllm_url = f"http://{LOOPBACK}:{vllm_port}"
    with ExitStack() as running:
        say(f"serving {target.service.name} of {_shown(options.stack)} as replica set {target.replica_set.name}, "
            f"on CPU; files in {_shown(run_dir)}")
        prometheus, rule_files = _start_prometheus(target, options, binary, run_dir, vllm_url, running)
        model_dir = options.work / "tiny-llama"
        if write_tiny_model(python, model_dir):
            say(f"wrote the tiny model to {_shown(model_dir)}")
        log = run_dir / "vllm.log"
        process = start_vllm(python, target.container_args, model_dir=model_dir, port=vllm_port, log=log)
        running.callback(_stop_uninterrupted, process)
        vllm = Server("vLLM", vllm_url, process, log)
        say(f"waiting for vLLM at {vllm.url} (about 90 s on 2 idle cores; log: {_shown(vllm.log)})")
        wait_ready(f"{vllm.url}/health", vllm.process, vllm.log, "vLLM", STARTUP_TIMEOUT_S)
        wait_ready(f"{prometheus.url}/-/ready", prometheus.process, prometheus.log, "Prometheus", PROMETHEUS_STARTUP_S)
        say(f"vLLM and Prometheus ready after {time.monotonic() - began:.0f} s")
        served = _served_name(target)
        _check("smoke", ["smoke", vllm.url, *SMOKE_ARGS, "--model", served])
        _check("bench", ["bench", vllm.url, *BENCH_ARGS, "--model", served])
        example = _example_query(target)
        series = _wait_for_series(prometheus, example)
        rules = _loaded_rules(prometheus)
        say(f"Prometheus has {series} series for the example query; {rules} rules loaded, none failing")
        _summary(vllm, prometheus, served, example, rule_files, time.monotonic() - began)
        if options.once:
            say("once: checks passed; stopping vLLM and Prometheus")
            return 0
        say("serving until Ctrl-C (which stops vLLM and Prometheus)")
        try:
            _watch([vllm, prometheus])
        except KeyboardInterrupt:  # the way a local run is meant to end, once its checks passed
            say("stopping vLLM and Prometheus")
    return 0


def say(line: str) -> None:
    """Progress on stdout, flushed: the CLI's reports go there too, and the order must hold."""
    print(line, flush=True)


def _shown(path: Path) -> str:
    """A path relative to the repository when it is inside it: shorter to read and to paste."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _served_name(target: LocalService) -> str:
    args = target.container_args
    return args[args.index("--served-model-name") + 1] if "--served-model-name" in args else target.service.model.name


def _start_prometheus(target: LocalService, options: Options, binary: Path, run_dir: Path, vllm_url: str,
                      running: ExitStack) -> tuple[Server, list[Path]]:
    """Prometheus first: it starts in a second and scrapes the vLLM port as soon as vLLM listens there."""
    rules_dir = run_dir / "rules"
    shutil.rmtree(rules_dir, ignore_errors=True)  # only this run's rules
    rule_files = prom.write_rule_files(rules_dir, target.prometheus_rules())
    config = prom.write_config(run_dir / "prometheus.yml", job=JOB, target=vllm_url.removeprefix("http://"),
                               labels=prom.pod_labels(target.replica_set), interval=SCRAPE_INTERVAL,
                               rule_files=rule_files)
    data = run_dir / "prometheus-data"
    shutil.rmtree(data, ignore_errors=True)  # a fresh TSDB: an earlier run's series would read as this one's
    address = f"{LOOPBACK}:{options.prometheus_port or free_port()}"
    log = run_dir / "prometheus.log"
    process = start(prom.prometheus_argv(binary, config=config, data=data, address=address), log)
    running.callback(_stop_uninterrupted, process)
    return Server("Prometheus", f"http://{address}", process, log), rule_files


def _stop_uninterrupted(process: subprocess.Popen[bytes]) -> None:
    """`stop`, with Ctrl-C and SIGTERM held until it is done: a second Ctrl-C while a server drains must
    not leave it half-stopped (the held signal then ends the run once this server is down)."""
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        stop(process)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def _check(name: str, argv: list[str]) -> None:
    """Run an `inferfleet` subcommand in this process, its report on stdout; LocalError when it fails."""
    print(f"\n$ inferfleet {' '.join(argv)}", flush=True)
    code = cli.main(argv)
    sys.stdout.flush()
    if code == 130:  # the CLI turns Ctrl-C into its exit code; here it must stop the whole run
        raise KeyboardInterrupt
    if code != 0:
        raise LocalError(f"inferfleet {name} failed (exit {code}); its report is above")
    print(flush=True)


def _example_query(target: LocalService) -> str:
    """Requests finished per second by the service's replica sets, over the labels the PodMonitor adds."""
    labels = f'{SERVICE_METRIC_LABEL}="{target.service.name}"'
    return f"sum by ({SERVICE_METRIC_LABEL}, {REPLICA_SET_METRIC_LABEL}) (rate({m.VLLM_REQUEST_SUCCESS}{{{labels}}}[1m]))"


def _wait_for_series(prometheus: Server, expr: str) -> int:
    """Until the example query returns series (two scrapes after the bench), or LocalError with the log's tail."""
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while time.monotonic() < deadline:
        if prometheus.process.poll() is not None:
            raise LocalError(f"Prometheus exited with {prometheus.process.returncode}:\n{log_tail(prometheus.log)}")
        try:
            result = prom.api_get(prometheus.url, "/api/v1/query", {"query": expr})["result"]
        except ValueError as error:
            raise LocalError(f"Prometheus refused the example query: {error}") from None
        if result:
            return len(result)
        time.sleep(WATCH_POLL_S)
    raise LocalError(f"Prometheus had no series for {expr} after {SCRAPE_WAIT_S} s "
                     f"(targets: {prometheus.url}/targets):\n{log_tail(prometheus.log)}")


def _loaded_rules(prometheus: Server) -> int:
    """How many rules Prometheus loaded; LocalError naming any whose evaluation failed."""
    groups = prom.api_get(prometheus.url, "/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    failing = [f"{rule['name']}: {rule.get('lastError')}" for rule in rules if rule.get("health") == "err"]
    if failing:
        raise LocalError("generated rules fail to evaluate:\n" + "\n".join(failing))
    return len(rules)


def _summary(vllm: Server, prometheus: Server, served: str, example: str, rule_files: list[Path],
             took_s: float) -> None:
    say(f"\nlocal serving path up after {took_s:.0f} s:")
    say(f"  vLLM        {vllm.url}   OpenAI API under /v1, model {served!r}; metrics at {vllm.url}/metrics")
    ui = prom.ui_base(prometheus.url)
    say(f"  Prometheus  {prometheus.url}   targets at {ui}targets, alerts and rules at {ui}alerts and {ui}rules")
    say(f"  example     {example}")
    say(f"              {prom.graph_url(ui, example)}")
    say(f"  rules       {', '.join(_shown(f) for f in rule_files) or 'none (observability is off in this stack)'}")
    say(f"  logs        {_shown(vllm.log)}, {_shown(prometheus.log)}")
    say(f"  try         curl -s {vllm.url}/v1/chat/completions -H 'Content-Type: application/json' "
        f"-d '{{\"model\": \"{served}\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hello!\"}}], \"max_tokens\": 16}}'")


def _watch(servers: list[Server]) -> None:
    """Block until interrupted; LocalError with its log's tail when a server exits on its own."""
    while True:
        for server in servers:
            if server.process.poll() is not None:
                raise LocalError(f"{server.name} exited with {server.process.returncode}:\n{log_tail(server.log)}")
        time.sleep(WATCH_POLL_S)
