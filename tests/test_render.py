"""`inferfleet render`: all-or-nothing output, secrets masked, the same errors as `validate`."""

import json

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
