"""A run's figures against the service's SLO: which terms hold and which are breached."""

from __future__ import annotations

import pytest

from components.loadtest.openai_stream import RequestResult
from components.loadtest.slo import check_slo
from components.loadtest.stats import Figures, figures
from components.spec.models import SloSpec


def slo(ttft: float, itl: float | None = None, availability: float | None = None) -> SloSpec:
    """As a stack file writes it (camelCase keys)."""
    data = {"ttftP99Ms": ttft} | ({"itlP99Ms": itl} if itl else {}) | ({"availability": availability} if availability else {})
    return SloSpec.model_validate(data)


def run(ttfts: list[float], itl: float, failures: int = 0) -> Figures:
    results = [RequestResult(ttft=t, itl=[itl, itl], latency=t + 2 * itl, output_tokens=3) for t in ttfts]
    results += [RequestResult(error="HTTP 503 from x: busy")] * failures
    return figures(results, duration_s=1.0)


def test_all_terms_met() -> None:
    checks = check_slo(run([0.1] * 99 + [0.2], itl=0.05), slo(300, 60, 0.99))
    assert [(c.name, c.ok) for c in checks] == [("TTFT p99", True), ("ITL p99", True), ("error ratio", True)]
    assert str(checks[0]) == "ok: TTFT p99 101.0 ms (SLO 300.0 ms)"  # rank 98.01 of 100: numpy interpolation


def test_ttft_breach_names_the_measured_p99_and_the_limit() -> None:
    checks = check_slo(run([0.1] * 90 + [0.5] * 10, itl=0.01), slo(300))
    assert [c.name for c in checks] == ["TTFT p99"]  # no ITL or availability term in this SLO
    assert not checks[0].ok
    assert str(checks[0]) == "BREACH: TTFT p99 500.0 ms (SLO 300.0 ms)"


def test_itl_breach() -> None:
    (_, itl) = check_slo(run([0.1], itl=0.2), slo(1000, 150))
    assert not itl.ok and itl.measured == pytest.approx(200.0)


def test_availability_bounds_the_error_ratio() -> None:
    target = slo(1000, availability=0.99)
    at_limit = check_slo(run([0.1] * 99, itl=0.01, failures=1), target)[-1]
    over = check_slo(run([0.1] * 98, itl=0.01, failures=2), target)[-1]
    assert at_limit.ok, at_limit  # 1 in 100 failed: exactly 1 - 0.99, allowed
    assert not over.ok and str(over) == "BREACH: error ratio 2.0000% (SLO 1.0000%)"


def test_no_successful_request_breaches_every_latency_term() -> None:
    checks = check_slo(run([], itl=0.0, failures=3), slo(1000, 100, 0.9))
    assert [c.ok for c in checks] == [False, False, False]
    assert str(checks[0]) == "BREACH: TTFT p99 no successful request (SLO 1000.0 ms)"
