"""Every dashboard query parses with Prometheus' own PromQL parser.

promtool has no "parse this expression" command, but `promtool check rules` parses the expression of every
rule it reads; so the queries go into a rule file as recording rules. A deliberately broken query proves
that the check can fail. promtool comes from Debian's `prometheus` package (the project's set-up installs
it); locally the test skips without it, under CI=true it fails instead.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from components.manifests.dashboards import dashboard_expressions
from tests.manifests.promtool import promtool

pytestmark = pytest.mark.e2e

BROKEN_EXPRESSION = 'histogram_quantile(0.99, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{namespace="x"}[5m]))'
"""One closing parenthesis short: what a hand edit of a generated query might leave."""


def _check_rules(expressions: Sequence[str], directory: Path) -> subprocess.CompletedProcess[str]:
    """`promtool check rules` over one group with a recording rule per expression."""
    rules = [{"record": f"inferfleet:dashboard_query:{index}", "expr": expr} for index, expr in enumerate(expressions)]
    path = directory / "dashboard_queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    return subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


def test_every_dashboard_query_parses(planned, catalog, tmp_path):
    spec, plan = planned
    expressions = dashboard_expressions(spec, plan, catalog)
    result = _check_rules([expr for _, expr in expressions], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in result.stdout


def test_a_broken_query_is_refused(tmp_path):
    result = _check_rules([BROKEN_EXPRESSION], tmp_path)
    assert result.returncode != 0
    assert "parse error" in (result.stdout + result.stderr)
