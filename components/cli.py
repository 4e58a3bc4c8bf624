"""`inferfleet`: validate, plan and describe stack specs offline, with no cloud account.

Exit codes: 0 success (an infeasible plan included), 1 an invalid stack, 2 a usage or internal
error. A user never sees a traceback: every failure is one line per problem.
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
    from components.policy_runner import load_policy_config, mandatory  # Pulumi loads only for render
    from components.render import render_stack_file, summary

    overrides = load_policy_config(args.policy_config) if args.policy_config else None
    try:
        rendered = render_stack_file(args.stack, args.out, overrides)
    except StackError as error:
        for problem in error.problems:
            print(problem)
        return 1
    print(summary(rendered))
    print(f"wrote {args.out}/resources.json, {args.out}/policy.json and {len(rendered.manifests)} objects "
          f"to {args.out}/manifests/")
    for violation in rendered.violations:
        print(f"{violation.enforcement}: {violation.policy}: {violation.type} {violation.name}: {violation.message}")
    return 1 if mandatory(rendered.violations) else 0


def _schema(args: argparse.Namespace) -> int:
    print(json.dumps(stack_json_schema(), indent=2))
    return 0


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
    render.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced as a whole)")
    render.add_argument("--policy-config", metavar="FILE",
                        help="JSON or YAML: policy (or all) -> level, or {enforcementLevel, ...settings}")
    render.set_defaults(run=_render)
    schema = commands.add_parser("schema", help="print the stack spec's JSON Schema")
    schema.set_defaults(run=_schema)
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
