"""What `validate` runs beyond the spec's own rules: names the manifests would derive that collide."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from components.spec import StackError
from components.stack import load_stack

ROOT = Path(__file__).resolve().parent.parent


def test_a_service_named_like_anothers_canary_is_refused_at_both_names(tmp_path: Path) -> None:
    document = yaml.safe_load((ROOT / "stacks" / "prod.yaml").read_text())
    chat = next(s for s in document["services"] if s["name"] == "chat")
    assert chat.get("canary"), "prod's chat has a canary"
    twin = copy.deepcopy(chat)
    twin["name"] = "chat-canary"
    twin.pop("canary", None)
    twin.pop("shadow", None)
    document["services"].append(twin)
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(StackError) as error:
        load_stack(path)
    problems = [str(p) for p in error.value.problems if "would be made for more than one of services" in p.message]
    assert problems, error.value.problems
    assert all(p.startswith(f"{path}:") for p in problems)
    assert {p.split(": ")[1] for p in problems} == {f"services.{i}.name" for i in (
        [s["name"] for s in document["services"]].index("chat"), len(document["services"]) - 1)}
    assert any("the Service 'chat-canary'" in p for p in problems)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_example_stacks_derive_no_colliding_names(env: str) -> None:
    load_stack(ROOT / "stacks" / f"{env}.yaml")
