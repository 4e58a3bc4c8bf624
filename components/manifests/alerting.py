"""Alertmanager's notification routes from the spec's `observability.alerting`.

The credentials (a Slack incoming-webhook URL, a PagerDuty routing key) are Pulumi secrets. They reach
Alertmanager as one Kubernetes Secret that the Alertmanager custom resource mounts under
`/etc/alertmanager/secrets/<name>/`, and the configuration names only those files (`api_url_file`,
`routing_key_file`), so neither the chart values, the rendered output nor Pulumi's plain state holds them.

Routing: `page` alerts (and kube-prometheus-stack's `critical` ones) go to PagerDuty when it is on, else to
Slack; `ticket` alerts and the chart's other rules go to Slack; with no Slack they stay in Alertmanager's
UI. The chart's Watchdog (an always-firing heartbeat) and InfoInhibitor alerts go nowhere. While an SLO's
page burn fires, its ticket burn for the same service and SLI is held back: one incident, one notification.
"""

from __future__ import annotations

from typing import Any

from components.manifests.alerts import PAGE, SLO_LABEL, TICKET
from components.manifests.autoscaling import SERVICE_METRIC_LABEL
from components.manifests.monitoring import MONITORING_NAMESPACE
from components.spec.models import AlertingSpec

SECRET_NAME = "inferfleet-alerting"
SLACK_WEBHOOK_KEY = "slack-webhook-url"
PAGERDUTY_ROUTING_KEY = "pagerduty-routing-key"
SECRET_MOUNT = f"/etc/alertmanager/secrets/{SECRET_NAME}"
"""Where the Alertmanager operator mounts each Secret listed in `alertmanagerSpec.secrets`."""

SLACK_WEBHOOK_CONFIG = "alertSlackWebhookUrl"
PAGERDUTY_ROUTING_CONFIG = "alertPagerDutyRoutingKey"
"""Pulumi secret config keys: `pulumi config set --secret alertSlackWebhookUrl https://hooks.slack.com/...`."""

NOWHERE = "null"
SLACK = "slack"
PAGERDUTY = "pagerduty"
SILENCED_ALERTS = ("Watchdog", "InfoInhibitor")
"""kube-prometheus-stack's heartbeat and inhibition helper: always firing by design, never a notification."""
PAGING_SEVERITIES = (PAGE, "critical")
"""The generated rules' `page` and kube-prometheus-stack's `critical` (its API-server and node outages)."""
GROUP_BY = ("alertname", SERVICE_METRIC_LABEL, "severity")
GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"


def secret_config_keys(alerting: AlertingSpec) -> dict[str, str]:
    """Secret key -> the Pulumi config key it is read from, for the routes the spec turns on."""
    keys = {}
    if alerting.slack_channel is not None:
        keys[SLACK_WEBHOOK_KEY] = SLACK_WEBHOOK_CONFIG
    if alerting.pager_duty:
        keys[PAGERDUTY_ROUTING_KEY] = PAGERDUTY_ROUTING_CONFIG
    return keys


def _slack(channel: str) -> dict[str, Any]:
    return {
        "name": SLACK,
        "slack_configs": [{
            "api_url_file": f"{SECRET_MOUNT}/{SLACK_WEBHOOK_KEY}",
            "channel": channel,
            "send_resolved": True,
            "title": '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} {{ .CommonLabels.inferfleet_service }}',
            "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
                    "Runbook: {{ .Annotations.runbook }}\n{{ end }}",
        }],
    }


def _pagerduty() -> dict[str, Any]:
    return {
        "name": PAGERDUTY,
        "pagerduty_configs": [{
            "routing_key_file": f"{SECRET_MOUNT}/{PAGERDUTY_ROUTING_KEY}",
            "send_resolved": True,
            "description": "{{ .CommonAnnotations.summary }}",
        }],
    }


def alertmanager_config(alerting: AlertingSpec) -> dict[str, Any]:
    """Alertmanager's configuration file for the spec's routes (the chart's `alertmanager.config`)."""
    default = SLACK if alerting.slack_channel is not None else NOWHERE
    page = PAGERDUTY if alerting.pager_duty else default
    receivers: list[dict[str, Any]] = [{"name": NOWHERE}]
    if alerting.slack_channel is not None:
        receivers.append(_slack(alerting.slack_channel))
    if alerting.pager_duty:
        receivers.append(_pagerduty())
    silenced = "|".join(SILENCED_ALERTS)
    return {
        "route": {
            "receiver": default,
            "group_by": list(GROUP_BY),
            "group_wait": GROUP_WAIT,
            "group_interval": GROUP_INTERVAL,
            "repeat_interval": f"{alerting.repeat_interval_hours}h",
            "routes": [
                {"receiver": NOWHERE, "matchers": [f'alertname=~"{silenced}"']},
                {"receiver": page, "matchers": [f'severity=~"{"|".join(PAGING_SEVERITIES)}"']},
            ],
        },
        "inhibit_rules": [{
            "source_matchers": [f'severity="{PAGE}"', f'{SLO_LABEL}=~".+"'],
            "target_matchers": [f'severity="{TICKET}"', f'{SLO_LABEL}=~".+"'],
            "equal": [SERVICE_METRIC_LABEL, SLO_LABEL],
        }],
        "receivers": receivers,
    }


def alerting_secret(values: dict[str, str]) -> dict[str, Any]:
    """The Secret Alertmanager mounts: secret key -> value (from Pulumi secret config)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": MONITORING_NAMESPACE,
                     "labels": {"app.kubernetes.io/part-of": "inferfleet"}},
        "type": "Opaque",
        "stringData": dict(values),
    }
