"""Alertmanager's routes from `observability.alerting`, checked with Alertmanager's own tool: amtool parses
the configuration (`check-config`) and routes sample alerts through it (`config routes test`), so a page
reaches PagerDuty, a ticket Slack and the chart's heartbeat nobody."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from components.manifests import alerting
from components.spec.models import AlertingSpec
from tests.manifests.amtool import amtool

BOTH = AlertingSpec(slackChannel="#ml-alerts", pagerDuty=True)
SLACK_ONLY = AlertingSpec(slackChannel="#ml-alerts")
NONE = AlertingSpec()


def _write(config: dict, tmp_path: Path) -> Path:
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _routes_to(config: Path, *labels: str) -> str:
    result = subprocess.run([amtool(), "config", "routes", "test", f"--config.file={config}", *labels],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def test_credentials_are_files_the_config_names_never_values():
    config = alerting.alertmanager_config(BOTH)
    (slack,) = next(r for r in config["receivers"] if r["name"] == "slack")["slack_configs"]
    (pager,) = next(r for r in config["receivers"] if r["name"] == "pagerduty")["pagerduty_configs"]
    assert slack["api_url_file"] == f"{alerting.SECRET_MOUNT}/{alerting.SLACK_WEBHOOK_KEY}"
    assert pager["routing_key_file"] == f"{alerting.SECRET_MOUNT}/{alerting.PAGERDUTY_ROUTING_KEY}"
    assert "api_url" not in slack and "routing_key" not in pager


def test_secret_config_keys_follow_the_routes():
    assert alerting.secret_config_keys(BOTH) == {alerting.SLACK_WEBHOOK_KEY: alerting.SLACK_WEBHOOK_CONFIG,
                                                 alerting.PAGERDUTY_ROUTING_KEY: alerting.PAGERDUTY_ROUTING_CONFIG}
    assert alerting.secret_config_keys(SLACK_ONLY) == {alerting.SLACK_WEBHOOK_KEY: alerting.SLACK_WEBHOOK_CONFIG}
    assert alerting.secret_config_keys(NONE) == {}


def test_the_secret_holds_exactly_the_given_keys_in_the_monitoring_namespace():
    secret = alerting.alerting_secret({alerting.SLACK_WEBHOOK_KEY: "https://hooks.slack.com/services/T/B/x"})
    assert secret["metadata"]["name"] == alerting.SECRET_NAME
    assert secret["metadata"]["namespace"] == "monitoring"
    assert secret["stringData"] == {alerting.SLACK_WEBHOOK_KEY: "https://hooks.slack.com/services/T/B/x"}


@pytest.mark.parametrize("routes", [BOTH, SLACK_ONLY, NONE], ids=["both", "slack", "none"])
@pytest.mark.e2e
def test_amtool_accepts_the_generated_config(routes, tmp_path):
    path = _write(alerting.alertmanager_config(routes), tmp_path)
    result = subprocess.run([amtool(), "check-config", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_amtool_rejects_a_route_to_an_unknown_receiver(tmp_path):
    """The check above can fail."""
    config = alerting.alertmanager_config(BOTH)
    config["route"]["routes"][1]["receiver"] = "opsgenie"
    result = subprocess.run([amtool(), "check-config", str(_write(config, tmp_path))],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "opsgenie" in result.stdout + result.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(("routes", "labels", "receiver"), [
    (BOTH, ("alertname=InferfleetErrorBudgetBurnFast", "severity=page", "inferfleet_service=chat"), "pagerduty"),
    (BOTH, ("alertname=KubeAPIDown", "severity=critical"), "pagerduty"),
    (BOTH, ("alertname=InferfleetErrorBudgetBurnSlow", "severity=ticket", "inferfleet_service=chat"), "slack"),
    (BOTH, ("alertname=KubePodCrashLooping", "severity=warning"), "slack"),
    (BOTH, ("alertname=Watchdog", "severity=none"), "null"),
    (SLACK_ONLY, ("alertname=InferfleetGpuXidError", "severity=page"), "slack"),
    (NONE, ("alertname=InferfleetGpuXidError", "severity=page"), "null"),
])
def test_alerts_reach_the_receiver_their_severity_calls_for(routes, labels, receiver, tmp_path):
    assert _routes_to(_write(alerting.alertmanager_config(routes), tmp_path), *labels) == receiver


def test_a_page_burn_holds_back_the_ticket_burn_of_the_same_service_and_sli():
    (rule,) = alerting.alertmanager_config(BOTH)["inhibit_rules"]
    assert rule["equal"] == ["inferfleet_service", "slo"]
    assert 'severity="page"' in rule["source_matchers"] and 'severity="ticket"' in rule["target_matchers"]
