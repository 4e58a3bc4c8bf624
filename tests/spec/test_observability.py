"""observability: managedPrometheus off unless asked, camelCase, on in prod; alerting routes and their channel names."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.spec.models import ObservabilitySpec
from components.stack import load_stack


def test_managed_prometheus_defaults_to_off():
    assert ObservabilitySpec.model_validate({}).managed_prometheus is False


def test_managed_prometheus_is_read_from_its_camel_case_key():
    assert ObservabilitySpec.model_validate({"managedPrometheus": True}).managed_prometheus is True
    with pytest.raises(ValidationError):
        ObservabilitySpec.model_validate({"managed_prometheus": True})


def test_only_prod_remote_writes_to_managed_prometheus():
    envs = ("dev", "staging", "prod")
    asked = {env: load_stack(f"stacks/{env}.yaml").spec.observability.managed_prometheus for env in envs}
    assert asked == {"dev": False, "staging": False, "prod": True}


def test_alerting_routes_nowhere_by_default():
    alerting = ObservabilitySpec.model_validate({}).alerting
    assert (alerting.slack_channel, alerting.pager_duty, alerting.routes_anywhere) == (None, False, False)


@pytest.mark.parametrize("channel", ["ml-alerts", "#ML Alerts", "#", "https://hooks.slack.com/services/T/B/x"])
def test_a_slack_channel_is_a_channel_name_never_a_webhook(channel):
    with pytest.raises(ValidationError, match="slackChannel"):
        ObservabilitySpec.model_validate({"alerting": {"slackChannel": channel}})


def test_prod_pages_through_pagerduty_and_tells_slack():
    alerting = load_stack("stacks/prod.yaml").spec.observability.alerting
    assert alerting.pager_duty and alerting.slack_channel == "#ml-prod-alerts"


@pytest.mark.parametrize("endpoint", ["tempo:4317", "grpc://tempo:4317", "http://tempo:4317/v1/traces"])
def test_a_tracing_endpoint_is_an_http_or_https_host_and_port(endpoint):
    with pytest.raises(ValidationError, match="tracingEndpoint"):
        ObservabilitySpec.model_validate({"tracing": True, "tracingEndpoint": endpoint})
