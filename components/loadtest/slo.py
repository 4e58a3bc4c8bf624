"""A run's figures against a service's SLO from its stack spec: pure, so every verdict is tested.

The SLO's fields (components/spec/models.py SloSpec) map to the figures the way the alert rules
read them: `ttftP99Ms` bounds the p99 TTFT, `itlP99Ms` the p99 inter-token latency, and
`availability` the success ratio, so the error ratio may be at most 1 - availability.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.loadtest.stats import Figures
from components.spec.models import SloSpec


@dataclass(frozen=True)
class SloCheck:
    """One SLO term: what was measured, the limit, and whether it holds (measured <= limit)."""

    name: str
    measured: float
    limit: float
    unit: str

    @property
    def ok(self) -> bool:
        """The term holds: an SLO is a ceiling, so measuring exactly the limit meets it."""
        return self.measured <= self.limit

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "BREACH"
        return f"{verdict}: {self.name} {_fmt(self.measured, self.unit)} (SLO {_fmt(self.limit, self.unit)})"


def check_slo(figures: Figures, slo: SloSpec) -> list[SloCheck]:
    """Every term the SLO sets, measured. A run with no successful request breaches the latency
    terms too: no answer is slower than any limit."""
    nothing = figures.completed == 0
    checks = [SloCheck("TTFT p99", float("inf") if nothing else figures.ttft_ms.p99, slo.ttft_p99_ms, "ms")]
    if slo.itl_p99_ms is not None:
        # A run whose requests yield one chunk each measures no gap: no evidence against the ITL term.
        checks.append(SloCheck("ITL p99", float("inf") if nothing else figures.itl_ms.p99, slo.itl_p99_ms, "ms"))
    if slo.availability is not None:
        checks.append(SloCheck("error ratio", figures.error_ratio, round(1 - slo.availability, 12), "ratio"))
    return checks


def _fmt(value: float, unit: str) -> str:
    if value == float("inf"):
        return "no successful request"
    if unit == "ratio":
        return f"{value:.4%}"
    return f"{value:.1f} {unit}"
