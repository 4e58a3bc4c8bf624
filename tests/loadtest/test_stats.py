"""Statistics of a run, with the definitions of vLLM's benchmark (numpy's linear percentiles)."""

from __future__ import annotations

import pytest

from components.loadtest.openai_stream import RequestResult
from components.loadtest.stats import Distribution, figures, percentile


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),  # numpy.percentile([1,2,3,4], 50)
        ([1.0, 2.0, 3.0, 4.0], 90, 3.7),
        ([4.0, 1.0, 3.0, 2.0], 99, 3.97),  # order of the input does not matter
        ([10.0], 99, 10.0),
        ([1.0, 5.0], 0, 1.0),
        ([1.0, 5.0], 100, 5.0),
    ],
)
def test_percentile_interpolates_linearly_between_ranks(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_refuses_empty_input_and_bad_q() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_distribution_reports_milliseconds() -> None:
    d = Distribution.of_seconds([0.1, 0.2, 0.3, 0.4])
    assert (d.count, d.mean, d.p50, d.p90) == (4, pytest.approx(250.0), pytest.approx(250.0), pytest.approx(370.0))
    assert Distribution.of_seconds([]) == Distribution(0, 0.0, 0.0, 0.0, 0.0)


def ok(ttft: float, itl: list[float], tokens: int, prompt: int = 10) -> RequestResult:
    return RequestResult(ttft=ttft, itl=itl, latency=ttft + sum(itl), output_tokens=tokens, prompt_tokens=prompt)


def test_figures_pool_itl_over_requests_and_rate_over_wall_clock() -> None:
    results = [
        ok(0.1, [0.01, 0.03], 3, prompt=10),
        ok(0.3, [0.02], 2, prompt=20),
        RequestResult(error="HTTP 500 from x: engine dead"),
        RequestResult(error="HTTP 500 from x: engine dead"),
    ]
    f = figures(results, duration_s=2.0)
    assert (f.requests, f.completed, f.failed, f.error_ratio) == (4, 2, 2, 0.5)
    assert f.errors == {"HTTP 500 from x: engine dead": 2}
    assert f.requests_per_s == 1.0
    assert (f.total_output_tokens, f.output_tokens_per_s) == (5, 2.5)
    assert f.mean_prompt_tokens == 15
    assert f.ttft_ms.mean == pytest.approx(200.0)
    assert (f.itl_ms.count, f.itl_ms.mean) == (3, pytest.approx(20.0))
    assert f.e2e_ms.p50 == pytest.approx((140 + 320) / 2)
    assert f.to_json()["error_ratio"] == 0.5


def test_figures_of_only_failures_have_empty_latencies() -> None:
    f = figures([RequestResult(error="timed out after 1 s")], duration_s=1.0)
    assert (f.completed, f.ttft_ms.count, f.mean_prompt_tokens, f.output_tokens_per_s) == (0, 0, None, 0.0)


def test_figures_need_a_positive_duration() -> None:
    with pytest.raises(ValueError):
        figures([], duration_s=0.0)
