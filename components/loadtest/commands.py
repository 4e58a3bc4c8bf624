"""The `smoke` and `bench` subcommands behind components/cli.py: flags in, exit code out.

Exit codes follow the CLI's: 0 success, 1 a failed check, an SLO breach, a run where no request
succeeded, or an invalid stack, 2 a usage error. Every failure is one line on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from components.loadtest import runtime
from components.loadtest.bench import BenchConfig, BenchRun, Level, run_bench
from components.loadtest.errors import LoadTestError
from components.loadtest.report import render_json, render_text, request_lines
from components.loadtest.slo import SloCheck, check_slo
from components.loadtest.smoke import run_smoke
from components.loadtest.target import service_from_stack
from components.spec import ServiceSpec, StackError
from components.spec.models import SloSpec

DEFAULT_OUTPUT_TOKENS = 128


def smoke_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the engine's smoke checks; print one line per check; 1 when any failed."""
    out = out or sys.stdout
    if args.engine != "triton" and not is_http_url(args.url):
        print(f"inferfleet smoke: {args.engine} needs an http:// or https:// base URL, got {args.url!r}", file=sys.stderr)
        return 2
    report = run_smoke(args.url, args.engine, args.model, args.timeout, args.max_tokens)
    if args.json:
        steps = [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in report.steps]
        print(json.dumps({"url": report.url, "engine": report.engine, "ok": report.ok, "steps": steps}, indent=2), file=out)
    else:
        for step in report.steps:
            print(step, file=out)
        print(f"smoke {'passed' if report.ok else 'FAILED'}: {report.engine} at {report.url}", file=out)
    return 0 if report.ok else 1


def is_http_url(url: str) -> bool:
    """An absolute http(s) URL with a host: what aiohttp can send to (checked first, for a clear message)."""
    scheme, _, rest = url.partition("://")
    return scheme in ("http", "https") and bool(rest.split("/", 1)[0])


def parse_concurrency(text: str) -> list[int]:
    """`1,4,16` -> [1, 4, 16]; argparse turns an ArgumentTypeError into a usage error (exit 2)."""
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not levels or any(level < 1 for level in levels):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return levels


def bench_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the load levels, print the figures, and compare them with the service's SLO if given."""
    out, err = out or sys.stdout, err or sys.stderr
    if not is_http_url(args.url):
        print(f"inferfleet bench: needs an http:// or https:// base URL, got {args.url!r}", file=err)
        return 2
    if (args.stack is None) != (args.service is None):
        print("inferfleet bench: --stack and --service go together", file=err)
        return 2
    try:
        given_slo = slo_from_flags(args)
    except ValueError as error:
        print(f"inferfleet bench: {error}", file=err)
        return 2
    if given_slo is not None and args.stack is not None:
        print("inferfleet bench: give the SLO either as --slo-* flags or through --stack/--service, not both", file=err)
        return 2
    if args.range_ratio and args.prompts is not None:
        print("inferfleet bench: --range-ratio draws synthetic lengths; a --prompts file gives its own", file=err)
        return 2
    if args.request_rate is not None and args.concurrency is not None and len(args.concurrency) > 1:
        print("inferfleet bench: with --request-rate, --concurrency takes one value (a cap)", file=err)
        return 2
    service: ServiceSpec | None = None
    if args.stack is not None:
        try:
            service = service_from_stack(args.stack, args.service)
        except StackError as error:
            for problem in error.problems:
                print(problem, file=out)
            return 1
    config = _config(args, service)
    progress = err if err.isatty() and not args.json else None
    try:
        run = runtime.run(run_bench(config, progress))
    except LoadTestError as error:
        print(f"inferfleet bench: {error}", file=err)
        return 1
    if args.save_requests is not None:
        try:
            write_atomically(Path(args.save_requests), "".join(line + "\n" for line in request_lines(run)))
        except OSError as error:
            print(f"inferfleet bench: cannot write {args.save_requests}: {error.strerror or error}", file=err)
            return 1
    checks = _slo_checks(run, given_slo or (service.slo if service is not None else None))
    if args.json:
        print(json.dumps(render_json(run, checks), indent=2), file=out)
    else:
        out.write(render_text(run, checks))
        if service is not None and service.slo is None:
            print(f"service {service.name} has no slo: nothing to compare", file=out)
    breached = any(not check.ok for level in (checks or {}).values() for check in level)
    nothing = any(result.figures.completed == 0 for result in run.levels)
    if nothing:
        print("inferfleet bench: no request succeeded at some load level", file=err)
    return 1 if breached or nothing else 0


def write_atomically(path: Path, text: str) -> None:
    """Write beside the target and rename into place: a reader never sees half a file, a failure leaves none."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _config(args: argparse.Namespace, service: ServiceSpec | None) -> BenchConfig:
    if args.request_rate is not None:
        cap = args.concurrency[0] if args.concurrency else None
        levels = [Level(cap, args.request_rate)]
    else:
        levels = [Level(c, None) for c in (args.concurrency or [1])]
    workload = service.workload if service is not None else None
    input_tokens = args.input_tokens or (workload.input_tokens if workload else None)
    output_tokens = args.output_tokens or (workload.output_tokens if workload else None) or DEFAULT_OUTPUT_TOKENS
    return BenchConfig(
        url=args.url,
        levels=levels,
        num_prompts=args.num_prompts,
        output_tokens=output_tokens,
        input_tokens=input_tokens,
        prompts_file=args.prompts,
        model=args.model,
        api=args.api,
        ignore_eos=args.ignore_eos,
        timeout_s=args.timeout,
        seed=args.seed,
        range_ratio=args.range_ratio,
    )


def slo_from_flags(args: argparse.Namespace) -> SloSpec | None:
    """An SLO given on the command line (what the deploy gate passes: no stack file in the cluster), checked
    as the spec checks one; None when no --slo-* flag is given. ValueError names what is wrong."""
    given = {key: value for key, value in (("ttftP99Ms", args.slo_ttft_p99_ms), ("itlP99Ms", args.slo_itl_p99_ms),
                                           ("availability", args.slo_availability)) if value is not None}
    if not given:
        return None
    if "ttftP99Ms" not in given:
        raise ValueError("--slo-ttft-p99-ms is required with the other --slo-* flags")
    try:
        return SloSpec.model_validate(given)
    except ValidationError as error:
        first = error.errors()[0]
        raise ValueError(f"--slo {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _slo_checks(run: BenchRun, slo: SloSpec | None) -> dict[str, list[SloCheck]] | None:
    if slo is None:
        return None
    return {result.level.label(): check_slo(result.figures, slo) for result in run.levels}
