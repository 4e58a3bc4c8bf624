"""`inferfleet render`: all-or-nothing output, secrets masked, the same errors as `validate`."""

import json
from pathlib import Path

import yaml

from components.cli import main


def test_render_writes_resources_and_manifests(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["render", "stacks/dev.yaml", "--out", str(out)]) == 0
    resources = json.loads((out / "resources.json").read_text())
    assert {"type", "name", "parent", "provider", "inputs"} <= set(resources[0])
    assert any(r["type"] == "aws:eks/cluster:Cluster" for r in resources)
    manifests = sorted((out / "manifests").iterdir())
    assert manifests and all(path.suffix == ".yaml" for path in manifests)
    for path in manifests:
        assert path.read_text().startswith("apiVersion: "), path.name
    printed = capsys.readouterr().out
    assert "aws:eks/cluster:Cluster" in printed and "resources" in printed


def test_render_masks_secrets(tmp_path):
    out = tmp_path / "out"
    assert main(["render", "stacks/dev.yaml", "--out", str(out)]) == 0
    resources = json.loads((out / "resources.json").read_text())
    (provider,) = [r for r in resources if r["type"] == "pulumi:providers:kubernetes"]
    assert provider["inputs"]["kubeconfig"] == "[secret]"
    assert "get-token" not in (out / "resources.json").read_text()


def test_invalid_stack_renders_nothing(tmp_path, capsys):
    stack = tmp_path / "dev.yaml"
    stack.write_text("environment: dev\naws: {region: us-east-1}\n")
    out = tmp_path / "out"
    assert main(["render", str(stack), "--out", str(out)]) == 1
    assert not out.exists()
    assert f"{stack}:2: aws.availabilityZones: required key is missing" in capsys.readouterr().out.splitlines()


def test_render_replaces_a_previous_output_whole(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert main(["render", "stacks/dev.yaml", "--out", str(out)]) == 0
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def _prod_on_upstream_tags(tmp_path):
    """prod without its own image builds: the upstream releases, by tag."""
    raw = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    raw["images"]["build"] = False
    raw["deployGate"]["enabled"] = False  # the gate runs a built image
    stack = tmp_path / "stacks" / "prod.yaml"
    stack.parent.mkdir()
    stack.write_text(yaml.safe_dump(raw))
    return stack


def test_prod_as_checked_in_has_no_mandatory_violation(tmp_path):
    out = tmp_path / "out"
    assert main(["render", "stacks/prod.yaml", "--out", str(out)]) == 0
    violations = json.loads((out / "policy.json").read_text())
    assert not [v for v in violations if v["enforcement"] == "mandatory"]


def test_render_writes_policy_json_and_fails_on_a_mandatory_violation(tmp_path, capsys):
    """Upstream images by tag in prod, which requires digests: exit 1, with the output written."""
    out = tmp_path / "out"
    assert main(["render", str(_prod_on_upstream_tags(tmp_path)), "--out", str(out)]) == 1
    violations = json.loads((out / "policy.json").read_text())
    assert violations and set(violations[0]) == {"policy", "enforcement", "type", "name", "message"}
    assert {v["policy"] for v in violations if v["enforcement"] == "mandatory"} == {"images-pinned-by-digest"}
    assert "mandatory: images-pinned-by-digest:" in capsys.readouterr().out


def test_policy_config_overrides_levels(tmp_path):
    config = tmp_path / "policy.yaml"
    config.write_text("images-pinned-by-digest: advisory\n")
    out = tmp_path / "out"
    assert main(["render", str(_prod_on_upstream_tags(tmp_path)), "--out", str(out), "--policy-config", str(config)]) == 0
    violations = json.loads((out / "policy.json").read_text())
    assert violations and all(v["enforcement"] == "advisory" for v in violations)


def test_dev_has_advisory_violations_only(tmp_path):
    out = tmp_path / "out"
    assert main(["render", "stacks/dev.yaml", "--out", str(out)]) == 0
    assert all(v["enforcement"] == "advisory" for v in json.loads((out / "policy.json").read_text()))


def test_alerting_credentials_render_as_a_masked_secret_and_their_stand_ins_never_show(tmp_path):
    """prod routes alerts to Slack and PagerDuty: offline there is no stack config, so render gives the
    secret config keys stand-ins marked secret; the output shows the Secret group only as `[secret]`."""
    out = tmp_path / "out"
    main(["render", "stacks/prod.yaml", "--out", str(out)])
    resources = json.loads((out / "resources.json").read_text())
    (secret,) = [r for r in resources if r["name"] == "prod-addons-alerting-secret"]
    assert secret["inputs"]["objs"] == "[secret]"
    written = (out / "resources.json").read_text() + "".join(p.read_text() for p in (out / "manifests").iterdir())
    assert "set at deploy" not in written
    assert "/etc/alertmanager/secrets/inferfleet-alerting/slack-webhook-url" in written


def test_render_writes_the_cross_layer_checks_and_fails_on_a_problem(tmp_path, capsys, monkeypatch):
    out = tmp_path / "dev"
    assert main(["render", "stacks/dev.yaml", "--out", str(out)]) == 0
    assert json.loads((out / "checks.json").read_text()) == []
    from components import render as render_module
    from components.checks import Problem

    found = Problem("schedulability", "Deployment inferfleet-serving/chat-floor", "fits no node shape: system: ...")
    monkeypatch.setattr(render_module, "run_all", lambda resources, manifests, catalog: [found])
    capsys.readouterr()
    assert main(["render", "stacks/dev.yaml", "--out", str(out)]) == 1
    assert f"check failed: {found}" in capsys.readouterr().out
    assert json.loads((out / "checks.json").read_text()) == [vars(found)]
