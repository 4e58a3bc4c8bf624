"""`inferfleet smoke`: is a deployed model server up, and does it answer?

Each engine has its own list of checks (smoke_openai.py for vLLM and Ray Serve, smoke_triton.py for
Triton). Checks run in order and stop at the first failure, since later ones would only fail for the
same reason; the report names every check that ran and why the failing one failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from components.loadtest.errors import LoadTestError

SmokeEngine = Literal["vllm", "ray-serve", "triton"]


@dataclass(frozen=True)
class Step:
    """One check: its name, whether it passed, and what was seen (or why it failed)."""

    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


@dataclass
class SmokeReport:
    """Every check that ran against `url`, in order; it passed only if each one did."""

    url: str
    engine: SmokeEngine
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """At least one check ran and none failed."""
        return bool(self.steps) and all(step.ok for step in self.steps)


class Checks:
    """Runs named checks into a report until one fails (a check fails by raising LoadTestError)."""

    def __init__(self, report: SmokeReport) -> None:
        self.report = report

    def passed(self, name: str, detail: str) -> None:
        """Record a check that passed, with what was seen."""
        self.report.steps.append(Step(name, True, detail))

    def failure(self, name: str, error: LoadTestError) -> None:
        """Record the check that failed and why; the engine's runner stops after it."""
        self.report.steps.append(Step(name, False, str(error)))


def run_smoke(url: str, engine: SmokeEngine, model: str | None, timeout_s: float, max_tokens: int) -> SmokeReport:
    """Run the engine's checks against `url` (HTTP base URL, or host:port of Triton's gRPC port)."""
    report = SmokeReport(url, engine)
    if engine == "triton":
        from components.loadtest.smoke_triton import smoke_triton

        smoke_triton(Checks(report), url, model, timeout_s, max_tokens)
    else:
        from components.loadtest import runtime
        from components.loadtest.smoke_openai import smoke_openai

        runtime.run(smoke_openai(Checks(report), url, engine, model, timeout_s, max_tokens))
    return report
