"""The serving images agree with the manifests that run them: the base image is the release
components/manifests/versions.py pins (a bump there without the Dockerfile fails here), taken by a
digest the build must be given; the user is non-root by number; the health check asks the path and
port the probes ask; the files the Dockerfile copies exist; what the vLLM image adds to Python is
pinned by hash and leaves vLLM's own pins alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components.manifests import triton, vllm
from components.manifests.serving import API_PORT
from components.manifests.versions import TRITON_IMAGE, TRITON_VERSION, TRITON_VLLM_IMAGE, VLLM_IMAGE, VLLM_VERSION
from tests.serving_images.dockerfile import arg_defaults, expand, instructions, last, only, required_args

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "serving_images"
VLLM_DOCKERFILE = IMAGES / "vllm" / "Dockerfile"
TRITON_DOCKERFILE = IMAGES / "triton" / "Dockerfile"
OURS = [VLLM_DOCKERFILE, TRITON_DOCKERFILE]


def base_reference(path: Path, **overrides: str) -> tuple[str, str]:
    """(image by tag, digest part as written) of the Dockerfile's FROM, ARGs expanded."""
    values = {**arg_defaults(path), **overrides}
    reference = expand(only(path, "FROM").arguments, values)
    image, _, digest = reference.partition("@")
    return image, digest


def test_the_vllm_image_is_built_on_the_pinned_release_by_a_required_digest() -> None:
    assert arg_defaults(VLLM_DOCKERFILE)["VLLM_VERSION"] == VLLM_VERSION
    image, digest = base_reference(VLLM_DOCKERFILE)
    assert image == VLLM_IMAGE
    assert arg_defaults(VLLM_DOCKERFILE)["VLLM_DIGEST"] is None
    assert required_args(digest) == {"VLLM_DIGEST"}
    image, digest = base_reference(VLLM_DOCKERFILE, VLLM_DIGEST="sha256:" + "0" * 64)
    assert digest == "sha256:" + "0" * 64


def test_the_triton_image_is_built_on_either_pinned_flavour_by_a_required_digest() -> None:
    defaults = arg_defaults(TRITON_DOCKERFILE)
    assert defaults["TRITON_VERSION"] == TRITON_VERSION
    assert defaults["TRITON_DIGEST"] is None
    assert base_reference(TRITON_DOCKERFILE)[0] == TRITON_VLLM_IMAGE
    image, digest = base_reference(TRITON_DOCKERFILE, TRITON_FLAVOUR="py3")
    assert image == TRITON_IMAGE
    assert required_args(digest) == {"TRITON_DIGEST"}


def test_the_reader_expands_and_keeps_what_it_should() -> None:
    """The checks above rely on the reader: an unknown ${NAME} stays, so a mistyped ARG would show."""
    assert expand("a:${V}@${D:?need-D}", {"V": "1", "D": None}) == "a:1@${D:?need-D}"
    assert expand("${W}", {"V": "1"}) == "${W}"
    assert required_args("x@${D:?m}-${E}") == {"D"}


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.parent.name)
def test_the_image_runs_as_a_numeric_non_root_user(path: Path) -> None:
    user = last(path, "USER").arguments
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, user
    assert gid == "" or gid.isdigit(), user


@pytest.mark.parametrize(
    ("path", "health_path", "ports"),
    [
        (VLLM_DOCKERFILE, vllm.HEALTH_PATH, [API_PORT]),
        (TRITON_DOCKERFILE, triton.READY_PATH, list(triton.PORTS.values())),
    ],
    ids=["vllm", "triton"],
)
def test_the_health_check_asks_what_the_probes_ask(path: Path, health_path: str, ports: list[int]) -> None:
    check = only(path, "HEALTHCHECK").arguments
    command = json.loads(check[check.index("CMD") + len("CMD") :].strip())
    assert f"http://127.0.0.1:{API_PORT}{health_path}'" in command[-1]
    assert [int(port) for port in only(path, "EXPOSE").arguments.split()] == ports


@pytest.mark.parametrize("path", OURS, ids=lambda p: p.parent.name)
def test_every_copied_file_is_in_the_build_context(path: Path) -> None:
    for instruction in instructions(path):
        if instruction.keyword == "COPY":
            *sources, _ = instruction.arguments.split()
            for source in sources:
                assert (path.parent / source).is_file(), source


def test_the_vllm_entrypoint_is_the_weight_cache_it_copies() -> None:
    entrypoint = json.loads(only(VLLM_DOCKERFILE, "ENTRYPOINT").arguments)
    copies = {i.arguments.split()[-1]: i.arguments.split()[0] for i in instructions(VLLM_DOCKERFILE) if i.keyword == "COPY"}
    assert entrypoint[0] == "python3" and copies[entrypoint[1]] == "weight_cache.py"


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def test_what_the_vllm_image_adds_is_pinned_by_hash_and_leaves_vllms_pins_alone() -> None:
    """Installed with --no-deps over vLLM's environment: a package vLLM also pins at another version would be
    replaced (the pinned vLLM's environment as scripts/vllm_cpu_requirements.txt resolves it)."""
    text = (IMAGES / "vllm" / "requirements.txt").read_text()
    entries = re.findall(r"^(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}$", text, flags=re.MULTILINE)
    assert entries and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", entry) for entry in entries), entries
    added = requirement_pins(IMAGES / "vllm" / "requirements.txt")
    assert len(entries) == len(added)
    assert added.keys() >= {"boto3", "botocore", "s3transfer"}
    vllms = requirement_pins(ROOT / "scripts" / "vllm_cpu_requirements.txt")
    assert {name: (version, vllms[name]) for name, version in added.items() if vllms.get(name, version) != version} == {}
