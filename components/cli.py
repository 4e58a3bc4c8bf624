"""`inferfleet`: validate, plan and describe stack specs offline, and smoke-test and load-test what they deploy.

Exit codes: 0 success (an infeasible plan included), 1 an invalid stack (or, for `smoke` and
`bench`, a failed check or an SLO breach), 2 a usage or internal error. A user never sees a
traceback: every failure is one line per problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from components.catalog import load_catalog
from components.planner import plan_stack
from components.report import render_plan
from components.spec import StackError
from components.spec.schema import stack_json_schema
from components.stack import load_stack


def _validate(args: argparse.Namespace) -> int:
    failed = False
    for file in args.stacks:
        try:
            load_stack(file)
        except StackError as error:
            failed = True
            for problem in error.problems:
                print(problem)
        else:
            print(f"{file}: ok", file=sys.stderr)
    return 1 if failed else 0


def _plan(args: argparse.Namespace) -> int:
    try:
        source = load_stack(args.stack)
    except StackError as error:
        for problem in error.problems:
            print(problem)
        return 1
    plan = plan_stack(source.spec, load_catalog())
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        sys.stdout.write(render_plan(plan))
    return 0


def _render(args: argparse.Namespace) -> int:
    from components.policy_runner import PolicyConfigError, load_policy_config, mandatory  # Pulumi loads only here
    from components.render import OutputRefused, render_stack_file, summary
    from inferfleet_policies.levels import levels_environment

    try:
        overrides = load_policy_config(args.policy_config) if args.policy_config else None
        rendered = render_stack_file(args.stack, args.out, overrides,
                                     inputs=[args.policy_config] if args.policy_config else [])
    except (PolicyConfigError, OutputRefused) as error:  # usage errors: nothing ran, nothing was touched
        print(f"inferfleet render: {error}", file=sys.stderr)
        return 2
    except StackError as error:
        for problem in error.problems:
            print(problem)
        return 1
    print(summary(rendered))
    if overrides is None and levels_environment(rendered.environment) != rendered.environment:
        print(f"note: environment {rendered.environment} has no column in the policy level table: policies run at "
              f"{levels_environment(rendered.environment)}'s levels (pass --policy-config, e.g. "
              "policy/config/staging.json, for another column)")
    print(f"wrote {args.out}/resources.json, {args.out}/policy.json, {args.out}/checks.json and {len(rendered.manifests)} objects "
          f"to {args.out}/manifests/")
    for violation in rendered.violations:
        print(f"{violation.enforcement}: {violation.policy}: {violation.type} {violation.name}: {violation.message}")
    for problem in rendered.problems:
        print(f"check failed: {problem}")
    return 1 if mandatory(rendered.violations) or rendered.problems else 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(stack_json_schema(), indent=2))
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from components.loadtest.commands import smoke_command  # aiohttp and tritonclient load only here

    return smoke_command(args)


def _bench(args: argparse.Namespace) -> int:
    from components.loadtest.commands import bench_command

    return bench_command(args)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _range_ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _concurrency(text: str) -> list[int]:
    from components.loadtest.commands import parse_concurrency

    return parse_concurrency(text)


def _add_smoke(commands: argparse._SubParsersAction) -> None:
    smoke = commands.add_parser(
        "smoke", help="check a deployed model server: ready, models listed, one streamed answer (Triton: one inference)"
    )
    smoke.add_argument("url", metavar="URL", help="base URL (http://host:port) or, for triton, host:port of its gRPC port")
    smoke.add_argument("--engine", required=True, choices=["vllm", "ray-serve", "triton"])
    smoke.add_argument("--model", help="model to use (default: the first listed; triton: the only ready one)")
    smoke.add_argument("--timeout", type=_positive_float, default=60.0, metavar="S", help="per step, seconds (default 60)")
    smoke.add_argument("--max-tokens", type=_positive_int, default=16, metavar="N", help="tokens to generate (default 16)")
    smoke.add_argument("--json", action="store_true", help="print the checks as JSON")
    smoke.set_defaults(run=_smoke)


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser(
        "bench", help="streaming load test of an OpenAI-compatible endpoint: TTFT, ITL, latency, tokens/s, SLO check"
    )
    bench.add_argument("url", metavar="URL", help="base URL, e.g. http://host:8000")
    bench.add_argument("--model", help="model name (default: the first /v1/models lists)")
    bench.add_argument("--api", choices=["chat", "completions"], default="chat",
                       help="/v1/chat/completions (default) or /v1/completions")
    load = bench.add_argument_group("load (closed: --concurrency levels; open: --request-rate)")
    load.add_argument("--concurrency", type=_concurrency, metavar="N[,N...]",
                      help="requests in flight, one run per level (default 1); with --request-rate, a cap")
    load.add_argument("--request-rate", type=_positive_float, metavar="R", help="Poisson arrivals, requests/s")
    load.add_argument("--num-prompts", type=_positive_int, default=100, metavar="N", help="requests per level (default 100)")
    prompts = bench.add_argument_group("prompts (default lengths: the --service's workload)")
    prompts.add_argument("--prompts", metavar="FILE.jsonl", help='one {"prompt": ..., "output_tokens": N} per line')
    prompts.add_argument("--input-tokens", type=_positive_int, metavar="N", help="synthetic prompt length in tokens")
    prompts.add_argument("--output-tokens", type=_positive_int, metavar="N",
                         help="max tokens per answer (default: the workload's, else 128)")
    prompts.add_argument("--ignore-eos", action="store_true", help="generate exactly the output length (vLLM extension)")
    prompts.add_argument("--range-ratio", type=_range_ratio, default=0.0, metavar="R",
                         help="synthetic lengths drawn per request from [L*(1-R), L*(1+R)], as vLLM's "
                              "--random-range-ratio (default 0: every request the same length)")
    slo = bench.add_argument_group("SLO (exit 1 on a breach)")
    slo.add_argument("--stack", metavar="STACK.yaml", help="stack file holding the service")
    slo.add_argument("--service", metavar="NAME", help="service whose workload and slo to use")
    slo.add_argument("--slo-ttft-p99-ms", type=float, metavar="MS", help="or the SLO itself: p99 TTFT ceiling, ms")
    slo.add_argument("--slo-itl-p99-ms", type=float, metavar="MS", help="p99 inter-token latency ceiling, ms")
    slo.add_argument("--slo-availability", type=float, metavar="R", help="success ratio, e.g. 0.999")
    bench.add_argument("--timeout", type=_positive_float, default=600.0, metavar="S", help="per request, seconds (default 600)")
    bench.add_argument("--seed", type=int, default=0, help="seed of synthetic prompts and arrivals (default 0)")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON (no progress bar)")
    bench.add_argument("--save-requests", metavar="FILE.jsonl",
                       help="also write one JSON line per request: when it was sent, TTFT, ITL gaps, E2E, tokens, error")
    bench.set_defaults(run=_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inferfleet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check stack files; one line per problem: FILE:LINE: path: message")
    validate.add_argument("stacks", nargs="+", metavar="STACK.yaml")
    validate.set_defaults(run=_validate)
    plan = commands.add_parser("plan", help="capacity and cost plan per service and pool")
    plan.add_argument("stack", metavar="STACK.yaml")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(run=_plan)
    render = commands.add_parser("render", help="run the Pulumi program offline under mocks and write what it creates")
    render.add_argument("stack", metavar="STACK.yaml")
    render.add_argument("--out", required=True, metavar="DIR",
                        help="output directory: new, empty or a previous render's (replaced as a whole); "
                             "anything else is refused")
    render.add_argument("--policy-config", metavar="FILE",
                        help="JSON or YAML: policy (or all) -> level, or {enforcementLevel, ...settings}; "
                             "environments other than dev, staging and prod default to prod's levels")
    render.set_defaults(run=_render)
    schema = commands.add_parser("schema", help="print the stack spec's JSON Schema")
    schema.set_defaults(run=_schema)
    _add_smoke(commands)
    _add_bench(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as error:  # the promise to users: one line, never a traceback
        print(f"inferfleet: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
