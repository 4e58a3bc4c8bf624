"""Serve a stack's vLLM service on this machine with real parts: vLLM on CPU, Prometheus, smoke and bench.

`python -m components.local` is what `make local` runs; components/local/__init__.py says what it starts.

Exit codes: 0 when the checks passed and the run ended by Ctrl-C or `--once`; 1 for an invalid stack, a
missing tool, a server that failed or a failed check; 130 when interrupted before the checks finished.
Every failure is a few lines (a server's failure ends with its log's tail), never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from components.local.processes import LocalError
from components.local.run import Options, run
from components.local.service import local_service
from components.local.vllm_cpu import REPO_ROOT
from components.spec import StackError

DEFAULT_STACK = REPO_ROOT / "stacks" / "dev.yaml"
DEFAULT_WORK = REPO_ROOT / "out" / "local"


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP stop the run like Ctrl-C does: the servers are stopped on the way out."""
    raise KeyboardInterrupt


def parse(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m components.local", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", type=Path, default=DEFAULT_STACK,
                        metavar="STACK.yaml", help="stack file (default: stacks/dev.yaml)")
    parser.add_argument("--service",
                        help="vLLM service of the stack (default: its first vLLM service)")
    parser.add_argument("--once", action="store_true", default=os.environ.get("LOCAL_ONCE", "") not in ("", "0"),
                        help="exit once the checks pass (also LOCAL_ONCE=1), for tests")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, metavar="DIR",
                        help="model, logs, rule files and Prometheus data (default: out/local)")
    parser.add_argument("--vllm-port", type=int, default=0, metavar="PORT", help="default: a free port")
    parser.add_argument("--prometheus-port", type=int, default=0, metavar="PORT", help="default: a free port")
    args = parser.parse_args(argv)
    return Options(stack=args.stack, service=args.service, once=args.once, work=args.work.resolve(),
                   vllm_port=args.vllm_port, prometheus_port=args.prometheus_port)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupted)
    # Ctrl-C stops the run even when this process inherited SIGINT ignored (started as a background job of a
    # non-interactive shell: Python then leaves SIGINT ignored, and a run that waits for Ctrl-C would never end).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run(local_service(options.stack, options.service), options)
    except StackError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1
    except LocalError as error:
        print(f"inferfleet local: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("inferfleet local: interrupted; vLLM and Prometheus stopped", file=sys.stderr)
        return 130
    except Exception as error:  # the promise to users: a line, never a traceback
        print(f"inferfleet local: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
