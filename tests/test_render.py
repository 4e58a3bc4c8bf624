"""`inferfleet render`: all-or-nothing output, secrets masked, the same errors as `validate`; it replaces only
its own previous output, renders byte for byte the same twice, and takes any environment name."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import render as render_module
from components.cli import main
from components.policy_runner import SCHEMA_KEYWORDS, Violation, check_policy_config
from components.render import MARKER, Rendered, clean_leftovers, manifest_files, tree_order, write
from inferfleet_policies import ALL_POLICIES
from inferfleet_policies.levels import LEVELS

ROOT = Path(__file__).resolve().parents[1]


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
    assert main(["render", "stacks/dev.yaml", "--out", str(out)]) == 0
    assert (out / MARKER).read_text().startswith("inferfleet-render 1\n")
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


# --- the output directory: render replaces only what it wrote -------------------------------------------------


def tiny(label: str = "a") -> Rendered:
    """A render's result without running the program: enough for the output directory's rules."""
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "serving"},
                  "data": {"label": label}}
    return Rendered(resources=[], manifests=[config_map])


def files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def no_program(monkeypatch):
    """For outputs render must refuse: it refuses before the program runs, so the program must not run (and,
    should the check ever regress, nothing is written where these tests point, the repository included)."""
    def must_not_run(*args, **kwargs):
        raise AssertionError("render ran the program for an output it must refuse")

    monkeypatch.setattr(render_module, "render", must_not_run)


def refused(capsys, *argv: str) -> str:
    assert main(["render", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("inferfleet render: "), err
    assert "internal error" not in err and "Traceback" not in err
    return lines[0]


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A directory of a user's own files, with a stack, as the current directory."""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text((ROOT / "stacks" / "dev.yaml").read_text())
    (tmp_path / "notes.txt").write_text("my notes\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_out_dot_is_refused(workdir, capsys, no_program):
    before = files(workdir)
    assert "is the current directory or one above it" in refused(capsys, "stacks/dev.yaml", "--out", ".")
    assert "is the current directory or one above it" in refused(capsys, "stacks/dev.yaml", "--out", "stacks/..")
    assert files(workdir) == before


def test_out_at_or_above_the_repository_is_refused(monkeypatch, capsys, no_program, tmp_path):
    monkeypatch.chdir(ROOT)
    expected = f"is the repository {ROOT}" if (ROOT / ".git").exists() else "is the current directory or one above it"
    for out in (".", str(ROOT), "..", "/"):
        assert expected in refused(capsys, "stacks/dev.yaml", "--out", out)
    # run from inside a repository, its root is refused even though it is not the current directory
    repository = tmp_path / "repo"
    (repository / ".git").mkdir(parents=True)
    (repository / "src").mkdir()
    monkeypatch.chdir(repository / "src")
    message = refused(capsys, str(ROOT / "stacks" / "dev.yaml"), "--out", str(repository))
    assert f"is the repository {repository}" in message
    assert (repository / ".git").is_dir()


def test_out_naming_a_file_is_refused(workdir, capsys, no_program):
    before = files(workdir)
    assert "exists and is not a directory" in refused(capsys, "stacks/dev.yaml", "--out", "notes.txt")
    assert "notes.txt is not a directory" in refused(capsys, "stacks/dev.yaml", "--out", "notes.txt/out")
    assert files(workdir) == before


def test_out_naming_the_stack_file_or_its_directory_is_refused(workdir, capsys, no_program):
    before = files(workdir)
    assert "exists and is not a directory" in refused(capsys, "stacks/dev.yaml", "--out", "stacks/dev.yaml")
    assert "holds stacks/dev.yaml, which this render reads" in refused(capsys, "stacks/dev.yaml", "--out", "stacks")
    assert files(workdir) == before


def test_out_holding_the_policy_config_is_refused_even_when_a_previous_render(workdir, capsys, no_program):
    write(tiny(), workdir / "out")
    (workdir / "out" / "levels.yaml").write_text("all: advisory\n")
    before = files(workdir)
    message = refused(capsys, "stacks/dev.yaml", "--out", "out", "--policy-config", "out/levels.yaml")
    assert "holds out/levels.yaml" in message
    assert files(workdir) == before


def test_a_non_empty_directory_without_the_marker_is_refused(workdir, capsys, no_program):
    (workdir / "results").mkdir()
    (workdir / "results" / "keep.txt").write_text("mine\n")
    before = files(workdir)
    assert f"has no {MARKER} marker" in refused(capsys, "stacks/dev.yaml", "--out", "results")
    assert files(workdir) == before


def test_a_symbolic_link_is_refused(workdir, capsys, no_program):
    write(tiny(), workdir / "real")
    (workdir / "link").symlink_to(workdir / "real")
    assert "is a symbolic link" in refused(capsys, "stacks/dev.yaml", "--out", "link")
    assert (workdir / "real" / MARKER).is_file()


def test_an_empty_directory_and_a_new_one_are_written(tmp_path):
    (tmp_path / "empty").mkdir()
    write(tiny(), tmp_path / "empty")
    write(tiny(), tmp_path / "new" / "nested")
    for out in (tmp_path / "empty", tmp_path / "new" / "nested"):
        assert set(files(out)) == {MARKER, "resources.json", "policy.json", "checks.json",
                                   "manifests/serving-ConfigMap-settings.yaml"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new"]


def failing_replace(monkeypatch, failing_calls: set[int]) -> None:
    """os.replace failing on the given calls (1-based): write's renames are old aside, new in, undo."""
    real, calls = os.replace, [0]

    def replace(source, destination):
        calls[0] += 1
        if calls[0] in failing_calls:
            raise OSError(f"rename {calls[0]} fails on purpose")
        real(source, destination)

    monkeypatch.setattr(os, "replace", replace)


def test_a_failure_between_the_renames_leaves_the_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write(tiny("a"), out)
    before = files(out)
    failing_replace(monkeypatch, {2})  # the old output is aside, the new one fails to move in
    with pytest.raises(OSError, match="rename 2"):
        write(tiny("b"), out)
    assert files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failure_while_writing_leaves_the_previous_output(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write(tiny("a"), out)
    before = files(out)

    def disk_full(manifests):
        raise OSError("no space left on device")

    monkeypatch.setattr(render_module, "manifest_files", disk_full)
    with pytest.raises(OSError, match="no space"):
        write(tiny("b"), out)
    assert files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_when_even_the_undo_fails_the_next_render_puts_the_previous_output_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write(tiny("a"), out)
    before = files(out)
    failing_replace(monkeypatch, {2, 3, 4})  # new in fails, the undo fails, and so does the retry on clean-up
    with pytest.raises(OSError, match="rename 2"):
        write(tiny("b"), out)
    monkeypatch.undo()
    assert not out.exists()
    (work,) = tmp_path.iterdir()  # the previous output is kept, in the marked work directory
    assert work.name.startswith(".out.render-") and files(work / "old") == before
    clean_leftovers(out)
    assert files(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_leftovers_of_a_killed_render_are_cleaned_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    write(tiny("a"), out)
    killed = tmp_path / ".out.render-abcd1234"  # killed while writing its new output
    (killed / "new" / "manifests").mkdir(parents=True)
    (killed / MARKER).write_text("inferfleet-render 1\n")
    look_alike = tmp_path / ".out.render-zzzz9999"  # same name, no marker: not render's
    look_alike.mkdir()
    (look_alike / "keep.txt").write_text("mine\n")
    other_target = tmp_path / ".other.render-abcd1234"  # another target's work
    other_target.mkdir()
    (other_target / MARKER).write_text("inferfleet-render 1\n")
    write(tiny("b"), out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.render-abcd1234", ".out.render-zzzz9999", "out"]
    assert b"label: b" in files(out)["manifests/serving-ConfigMap-settings.yaml"]


# --- reproducible output ----------------------------------------------------------------------------------------


def test_manifest_files_are_named_by_object_with_a_stable_disambiguator():
    def config_map(name: str, label: str, namespace: str = "serving") -> dict:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                "data": {"label": label}}

    objects = [config_map("a", "2"), config_map("a", "1"), config_map("a-2", "x"), config_map("A", "y"),
               {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "serving"}}]
    named = manifest_files(objects)
    assert named == manifest_files(list(reversed(objects)))
    assert sorted(named) == ["cluster-Namespace-serving.yaml", "serving-ConfigMap-A.yaml", "serving-ConfigMap-a-2.yaml",
                             "serving-ConfigMap-a_2.yaml", "serving-ConfigMap-a_3.yaml"]
    assert "label: '1'" in named["serving-ConfigMap-a_2.yaml"] and "label: '2'" in named["serving-ConfigMap-a_3.yaml"]


def test_tree_order_puts_parents_first_and_does_not_depend_on_registration_order():
    from components.mocks import RecordedResource

    def resource(urn: str, parent: str = "") -> RecordedResource:
        return RecordedResource(type="t", name=urn, urn=urn, parent=parent, provider="", custom=True, inputs={})

    registered = [resource("b/2", "b"), resource("a"), resource("b"), resource("b/1", "b"), resource("a/9", "a"),
                  resource("c", "urn:of:the:stack")]
    ordered = [r.urn for r in tree_order(registered)]
    assert ordered == ["a", "a/9", "b", "b/1", "b/2", "c"]
    assert [r.urn for r in tree_order(reversed(registered))] == ordered


def test_policy_json_and_checks_json_are_sorted(tmp_path):
    from components.checks import Problem

    violations = [Violation("zone-spread", "advisory", "t", "b", "m"),
                  Violation("cost-tags", "advisory", "t", "a", "m")]
    problems = [Problem("schedulability", "b", "m"), Problem("aws-limits", "a", "m")]
    write(Rendered(resources=[], manifests=[], violations=violations, problems=problems), tmp_path / "one")
    write(Rendered(resources=[], manifests=[], violations=violations[::-1], problems=problems[::-1]), tmp_path / "two")
    assert files(tmp_path / "one") == files(tmp_path / "two")
    written = json.loads((tmp_path / "one" / "policy.json").read_text())
    assert [v["policy"] for v in written] == ["cost-tags", "zone-spread"]


@pytest.mark.slow
def test_two_renders_of_prod_are_byte_identical(tmp_path):
    """Two processes (two string hash seeds, so two set orders too), one spec: the same files, byte for byte."""
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        command = [sys.executable, "-m", "components.cli", "render", "stacks/prod.yaml", "--out", str(tmp_path / seed)]
        runs.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True))
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode in (0, 1) and "internal error" not in err, err
    first, second = files(tmp_path / "1"), files(tmp_path / "2")
    assert len(first) > 50 and list(first) == list(second)
    for name in first:
        assert first[name] == second[name], name


# --- a bad --policy-config, and no asyncio traceback after a failed render ---------------------------------------


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("levels.json", "{\"gpu-budget\": advisory}", "levels.json:1: not valid JSON: Expecting value (column 16)"),
    ("levels.yaml", "gpu-budget: [advisory\n", "levels.yaml:2: not valid YAML:"),
    ("levels.yaml", "- gpu-budget\n", "levels.yaml: expected a mapping of policy name"),
    ("levels.yaml", "", "levels.yaml: expected a mapping of policy name (or `all`) to a level or to {enforcementLevel: "
                        "LEVEL, setting: value...}, got an empty document"),
    ("levels.yaml", "gpu-budgt: advisory\n", "levels.yaml: unknown policy 'gpu-budgt' (did you mean gpu-budget?)"),
    ("levels.yaml", "1: advisory\n", "levels.yaml: unknown policy 1"),
    ("levels.yaml", "gpu-budget: loud\n",
     "levels.yaml: gpu-budget: level 'loud' is not one of mandatory, advisory, disabled"),
    ("levels.yaml", "gpu-budget: {enforcementLevel: off}\n", "gpu-budget.enforcementLevel: level False is not one of"),
    ("levels.yaml", "gpu-budget: {maxGpusPerGroup: many}\n",
     "gpu-budget.maxGpusPerGroup: expected a number, got 'many'"),
    ("levels.yaml", "gpu-budget: {maxGpusPerGroup: -1}\n", "gpu-budget.maxGpusPerGroup: -1 is below the minimum 0"),
    ("levels.json", "{\"max-hourly-cost\": {\"maxUsdPerHour\": NaN}}",
     "max-hourly-cost.maxUsdPerHour: expected a number"),
    ("levels.yaml", "gpu-budget: {colour: red}\n", "gpu-budget: unknown setting 'colour'"),
    ("levels.yaml", "gpu-budget: {environment: qa}\n", "gpu-budget.environment: 'qa' is not one of dev, staging, prod"),
    ("levels.yaml", "all: {enforcementLevel: advisory, environment: staging}\n", "all: only enforcementLevel applies"),
    ("levels.yaml", "gpu-budget: loud\ncost-tags: louder\n",
     "is not one of mandatory, advisory, disabled (and 1 more)"),
    ("levels.yaml", "a: " + "[" * 100_000, "levels.yaml:1: nested deeper than 32 levels"),
    ("levels.yaml", "".join(f"{' ' * n}k{n}:\n" for n in range(40)), "levels.yaml:32: nested deeper than 32 levels"),
    ("levels.json", "[" * 100_000, "levels.json: nested deeper than 32 levels"),
    ("levels.yaml", "gpu-budget: {maxGpusPerGroup: 1" + "0" * 5000 + "}\n",
     "levels.yaml: Exceeds the limit (4300 digits)"),
    ("levels.yaml", b"\xff\xfe binary", "levels.yaml: not UTF-8 text (byte 0)"),
    ("levels.yaml", "#" * (1 << 20) + "\n", "levels.yaml: larger than 1024 KiB"),
])
def test_a_bad_policy_config_is_one_line_naming_the_file(tmp_path, capsys, no_program, name, content, expected):
    config = tmp_path / name
    config.write_bytes(content if isinstance(content, bytes) else content.encode())
    message = refused(capsys, "stacks/dev.yaml", "--out", str(tmp_path / "out"), "--policy-config", str(config))
    assert message.startswith(f"inferfleet render: {config}") and expected in message, message
    assert not (tmp_path / "out").exists()


def test_a_missing_policy_config_is_one_line(tmp_path, capsys, no_program):
    missing = tmp_path / "no"
    message = refused(capsys, "stacks/dev.yaml", "--out", str(tmp_path / "out"), "--policy-config", str(missing))
    assert message == f"inferfleet render: {tmp_path / 'no'}: cannot read: No such file or directory"


def test_the_checked_in_pack_configs_are_valid_policy_configs():
    for path in sorted((ROOT / "policy" / "config").glob("*.json")):
        assert check_policy_config(json.loads(path.read_text())) == [], path


def test_policy_schemas_use_only_what_the_config_check_reads():
    def keywords(schema) -> set[str]:
        found = set(schema)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                found |= keywords(schema[key])
        for sub in (schema.get("properties") or {}).values():
            found |= keywords(sub)
        return found

    for policy in ALL_POLICIES:
        for prop in policy.config_schema.properties.values():
            assert keywords(prop) <= SCHEMA_KEYWORDS, policy.name


FAILING_RENDER = """
import sys
from components import mocks
from components.cli import main

real, calls = mocks.CloudMocks.new_resource, [0]
fail_at = int(sys.argv[2])

def new_resource(self, args):
    calls[0] += 1
    if calls[0] == fail_at:
        raise RuntimeError("a mock failure on purpose")
    return real(self, args)

mocks.CloudMocks.new_resource = new_resource
sys.exit(main(["render", "stacks/dev.yaml", "--out", sys.argv[1]]))
"""


@pytest.mark.parametrize("fail_at", [30, 0])
def test_a_render_leaves_no_event_loop_open_to_print_a_traceback(tmp_path, fail_at):
    """Pulumi's runtime left an event loop per worker thread unclosed; the garbage collector's
    `BaseEventLoop.__del__` then printed a traceback (shown here by making ResourceWarning an error)."""
    command = [sys.executable, "-W", "error::ResourceWarning", "-c", FAILING_RENDER, str(tmp_path / "out"), str(fail_at)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if fail_at:
        assert result.returncode == 2
        assert result.stderr == "inferfleet: internal error: RuntimeError: a mock failure on purpose\n"
        assert not (tmp_path / "out").exists()
    else:
        assert result.returncode in (0, 1) and result.stderr == ""


@pytest.mark.parametrize("fail_at", [5, 60])
def test_a_failed_program_leaves_no_failed_future_to_log_a_traceback_later(monkeypatch, caplog, fail_at):
    """The futures a failed program leaves failed and unawaited used to log `Future exception was never retrieved`
    with a traceback whenever the garbage collector found them (at exit, after the command's one line)."""
    import gc

    from components import mocks
    from components.catalog import load_catalog
    from components.stack import load_stack

    real, calls = mocks.CloudMocks.new_resource, [0]

    def new_resource(self, args):
        calls[0] += 1
        if calls[0] == fail_at:
            raise RuntimeError("a mock failure on purpose")
        return real(self, args)

    monkeypatch.setattr(mocks.CloudMocks, "new_resource", new_resource)
    with pytest.raises(Exception, match="on purpose"):
        render_module.run_program(load_stack("stacks/dev.yaml"), load_catalog())
    gc.collect()
    assert [record.getMessage() for record in caplog.records if record.name == "asyncio"] == []


# --- any environment name ---------------------------------------------------------------------------------------


def renamed_stack(tmp_path: Path, source: str, environment: str) -> Path:
    raw = (ROOT / "stacks" / f"{source}.yaml").read_text()
    assert raw.count(f"\nenvironment: {source}\n") == 1
    stack = tmp_path / f"{environment}.yaml"
    stack.write_text(raw.replace(f"\nenvironment: {source}\n", f"\nenvironment: {environment}\n"))
    return stack


def test_an_environment_of_another_name_renders_at_prods_levels_unless_configured(tmp_path, capsys):
    """qa: staging's spec under another name. With no level column of its own it gets prod's (the strictest, as
    the pack without config), says so, and policy/config/staging.json gives it staging's."""
    stack = renamed_stack(tmp_path, "staging", "qa")
    code = main(["render", str(stack), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code in (0, 1) and "internal error" not in err
    assert "note: environment qa has no column in the policy level table: policies run at prod's levels" in out
    violations = json.loads((tmp_path / "out" / "policy.json").read_text())
    assert violations and all(v["enforcement"] == LEVELS[v["policy"]]["prod"] for v in violations)
    assert {v["policy"] for v in violations if v["enforcement"] == "mandatory"} >= {"min-replicas"}
    # its own root stack, although other programs ran in this process before (the runtime kept the first one)
    resources = json.loads((tmp_path / "out" / "resources.json").read_text())
    stacks = {r["parent"] for r in resources if "::pulumi:pulumi:Stack::" in (r["parent"] or "")}
    assert stacks == {"urn:pulumi:qa::inferfleet::pulumi:pulumi:Stack::inferfleet-qa"}

    code = main(["render", str(stack), "--out", str(tmp_path / "out"), "--policy-config", "policy/config/staging.json"])
    out, err = capsys.readouterr()
    assert code in (0, 1) and "internal error" not in err and "note:" not in out
    violations = json.loads((tmp_path / "out" / "policy.json").read_text())
    assert all(v["enforcement"] == LEVELS[v["policy"]]["staging"] for v in violations)
    assert not [v for v in violations if v["enforcement"] == "mandatory"]


def test_a_production_environment_of_another_name_keeps_prods_gates(tmp_path, capsys):
    stack = renamed_stack(tmp_path, "prod", "eu-prod")
    code = main(["render", str(stack), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code in (0, 1) and "internal error" not in err
    violations = json.loads((tmp_path / "out" / "policy.json").read_text())
    assert all(v["enforcement"] == LEVELS[v["policy"]]["prod"] for v in violations)
    assert not [v for v in violations if v["enforcement"] == "mandatory"]
    resources = json.loads((tmp_path / "out" / "resources.json").read_text())
    assert any(r["name"].startswith("eu-prod-") for r in resources)


def test_the_longest_names_the_spec_allows_render_within_every_aws_name_limit(tmp_path, capsys):
    """Prod (deploy runner, spot pools, every add-on) with a 40-character environment and 40-character pool and
    service names: every generated AWS name fits its limit (shortened with a hash), none collides, and the
    render passes its checks."""
    data = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    data["environment"] = environment = "e" + "x" * 38 + "z"
    long = lambda name, i: f"{(name + '-' + 'x' * 40)[:37]}{i:02d}z"
    pools = {pool["name"]: long(pool["name"], i) for i, pool in enumerate(data["gpuPools"])}
    for pool in data["gpuPools"]:
        pool["name"] = pools[pool["name"]]
    for i, service in enumerate(data["services"]):
        service["name"], service["pools"] = long(service["name"], i), [pools[p] for p in service["pools"]]
    stack = tmp_path / f"{environment}.yaml"
    stack.write_text(yaml.safe_dump(data, sort_keys=False))
    code = main(["render", str(stack), "--out", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr()
    assert json.loads((tmp_path / "out" / "checks.json").read_text()) == []
