"""observability.managedPrometheus: off unless asked, camelCase, on in prod."""

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
