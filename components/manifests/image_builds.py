"""What `images.build` builds: one image per serving flavour the services use, from serving_images/.

Pure: the Pulumi side (components/aws/serving_images.py) resolves each base image's digest, builds and
pushes. A build is named by its key (the repository tag's prefix), reads the pinned release from
versions.py (the same constants the manifests and the e2e venvs use), and is tagged by a hash of its
build context and arguments, so an unchanged image keeps its tag (ECR tags are immutable here) and a
changed one gets a new tag and a new digest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from components.catalog import Catalog
from components.manifests import versions as v
from components.spec.models import ServiceSpec, StackSpec

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
SERVING_IMAGES_DIR = REPOSITORY_ROOT / "serving_images"
GATE_KEY = "gate"
TAG_HASH_LENGTH = 16
IGNORED_IN_CONTEXT = ("__pycache__", ".pytest_cache")
"""Build-context entries that do not reach the image's content (bytecode caches from local test runs)."""


@dataclass(frozen=True)
class ImageBuild:
    key: str
    """vllm, triton-vllm, triton or ray-serve: the tag's prefix and the build's resource name."""
    engine: str
    """The service engine, which names the ECR repository (components/aws/storage.py)."""
    context: Path
    base: str
    """The upstream image by tag that the Dockerfile builds on; its digest is resolved per stack."""
    version_args: tuple[tuple[str, str], ...]
    digest_arg: str
    """The Dockerfile's ARG that takes the base's digest (the build stops without it)."""
    dockerfile: Path | None = None
    """Default: `Dockerfile` in the context."""
    sources: tuple[Path, ...] = ()
    """What the image is built from, when the context holds more (the gate's context is the repository,
    of which its .dockerignore keeps only these). Default: the whole context."""

    def build_args(self, base_digest: str) -> dict[str, str]:
        return {**dict(self.version_args), self.digest_arg: base_digest}

    def tag(self, base_digest: str) -> str:
        """`<key>-<hash>`: the hash of every file of the build context (path and bytes) and the build arguments."""
        digest = hashlib.sha256()
        roots = self.sources or (self.context,)
        files = sorted(path for root in roots for path in root.rglob("*"))
        for path in files:
            if path.is_file() and not any(part in IGNORED_IN_CONTEXT for part in path.parts):
                digest.update(path.relative_to(self.context).as_posix().encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
        for key, value in sorted(self.build_args(base_digest).items()):
            digest.update(f"{key}={value}\0".encode())
        return f"{self.key}-{digest.hexdigest()[:TAG_HASH_LENGTH]}"


BUILDS = {
    "vllm": ImageBuild("vllm", "vllm", SERVING_IMAGES_DIR / "vllm", v.VLLM_IMAGE,
                       (("VLLM_VERSION", v.VLLM_VERSION),), "VLLM_DIGEST"),
    "triton-vllm": ImageBuild("triton-vllm", "triton", SERVING_IMAGES_DIR / "triton", v.TRITON_VLLM_IMAGE,
                              (("TRITON_VERSION", v.TRITON_VERSION), ("TRITON_FLAVOUR", "vllm-python-py3")),
                              "TRITON_DIGEST"),
    "triton": ImageBuild("triton", "triton", SERVING_IMAGES_DIR / "triton", v.TRITON_IMAGE,
                         (("TRITON_VERSION", v.TRITON_VERSION), ("TRITON_FLAVOUR", "py3")), "TRITON_DIGEST"),
    "ray-serve": ImageBuild("ray-serve", "ray-serve", SERVING_IMAGES_DIR / "ray-serve", v.RAY_LLM_IMAGE,
                            (("RAY_VERSION", v.RAY_VERSION),), "RAY_DIGEST"),
    GATE_KEY: ImageBuild(GATE_KEY, GATE_KEY, REPOSITORY_ROOT, v.GATE_BASE_IMAGE,
                         (("PYTHON_VERSION", v.GATE_PYTHON_VERSION),), "PYTHON_DIGEST",
                         dockerfile=SERVING_IMAGES_DIR / "gate" / "Dockerfile",
                         sources=(REPOSITORY_ROOT / "components", SERVING_IMAGES_DIR / "gate")),
}


def build_key(service: ServiceSpec, catalog: Catalog) -> str:
    """Which build serves the service (Triton: by its backend, vLLM's or the others')."""
    if service.engine != "triton":
        return service.engine
    architecture = catalog.architecture_for(service.model)
    assert architecture is not None, "validated stacks name known models"
    return "triton-vllm" if service.triton_backend(architecture.kind) == "vllm" else "triton"


def built_services(spec: StackSpec, catalog: Catalog) -> dict[str, str]:
    """Service name -> build key, for the services that run a built image (none unless images.build;
    never a service that names its own `image`)."""
    if not spec.images.build:
        return {}
    return {service.name: build_key(service, catalog) for service in spec.services if not service.image}


def image_builds(spec: StackSpec, catalog: Catalog) -> list[ImageBuild]:
    """The builds the stack needs, once each, in service order; then the deploy gate's when it is on."""
    keys = list(dict.fromkeys(built_services(spec, catalog).values()))
    if spec.images.build and spec.deploy_gate.enabled:
        keys.append(GATE_KEY)
    return [BUILDS[key] for key in keys]
