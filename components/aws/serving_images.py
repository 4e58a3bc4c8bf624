"""The project's serving images, built and pushed where `pulumi up` runs (spec `images.build`).

Per build (components/manifests/image_builds.py): the base image's digest is resolved from its registry
once per stack and kept in an SSM parameter named by the base release (`ignore_changes` on its value:
later deploys build on the same bytes; a release bump names a new parameter, resolved anew; to take a
re-pushed base deliberately, overwrite the parameter and `pulumi refresh`). The image is built with
BuildKit for the pool's platform, tagged by a hash of its context and arguments, pushed to the engine's
ECR repository, and served by the digest the push returns. Nothing is built on preview (`pulumi preview`
in the PR workflow needs no Docker): a changed image shows as an update with its digest unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
import pulumi_docker_build as docker_build

from components.manifests.image_builds import ImageBuild

BASE_DIGEST_PARAMETER_PREFIX = "/inferfleet"


def base_digest_parameter(environment: str, build: ImageBuild) -> str:
    """The SSM parameter holding the stack's pinned digest of a build's base release."""
    release = build.base.rsplit("/", 1)[-1].replace(":", "/")
    return f"{BASE_DIGEST_PARAMETER_PREFIX}/{environment}/image-bases/{build.key}/{release}"


@dataclass
class ServingImagesArgs:
    environment: str
    builds: list[ImageBuild]
    repository_urls: dict[str, pulumi.Input[str]]
    """Engine -> its ECR repository URL (ModelStorage's repository_urls, keyed by repository name's engine)."""
    registry_id: pulumi.Input[str]
    """The account whose ECR registry the repositories are in."""
    platform: str = "linux/amd64"
    """Default linux/amd64 (the GPU instance types the catalog knows are x86_64)."""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.builds:
            raise ValueError("ServingImagesArgs.builds: nothing to build")
        missing = sorted({b.engine for b in self.builds} - set(self.repository_urls))
        if missing:
            raise ValueError(f"ServingImagesArgs.repository_urls: no repository for {', '.join(missing)}")
        if self.platform not in {p.value for p in docker_build.Platform}:
            raise ValueError(f"ServingImagesArgs.platform: {self.platform!r} is not a BuildKit platform")


class ServingImages(pulumi.ComponentResource):
    """Every serving image the stack runs that the project builds itself."""

    refs: dict[str, pulumi.Output[str]]
    """Build key -> `repository:tag@sha256:...` of the pushed image."""
    base_digests: dict[str, pulumi.Output[str]]
    """Build key -> the pinned digest of its base release."""

    def __init__(self, name: str, args: ServingImagesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inferfleet:aws:ServingImages", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        token = aws.ecr.get_authorization_token_output(registry_id=args.registry_id, opts=pulumi.InvokeOutputOptions(parent=self))
        self.refs = {}
        self.base_digests = {}
        for build in args.builds:
            resolved = docker.get_registry_image_output(name=build.base, opts=pulumi.InvokeOutputOptions(parent=self))
            pinned = aws.ssm.Parameter(
                f"{name}-{build.key}-base",
                name=base_digest_parameter(args.environment, build),
                type="String",
                value=resolved.sha256_digest,
                description=f"Digest of {build.base} that inferfleet builds its {build.key} image on",
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["value"]),
            )
            # The provider keeps every parameter value secret; a public image's digest is not one.
            base_digest = pulumi.Output.unsecret(pinned.value)
            repository = pulumi.Output.from_input(args.repository_urls[build.engine])
            image = docker_build.Image(
                f"{name}-{build.key}",
                context=docker_build.BuildContextArgs(location=str(build.context)),
                dockerfile=docker_build.DockerfileArgs(location=str(build.dockerfile)) if build.dockerfile else None,
                build_args=base_digest.apply(build.build_args),
                platforms=[docker_build.Platform(args.platform)],
                push=True,
                build_on_preview=False,
                tags=[pulumi.Output.all(repository, base_digest).apply(lambda r, build=build: f"{r[0]}:{build.tag(r[1])}")],
                registries=[docker_build.RegistryArgs(
                    address=repository.apply(lambda url: url.split("/", 1)[0]),
                    username=token.user_name,
                    password=pulumi.Output.secret(token.password),
                )],
                opts=child,
            )
            self.refs[build.key] = image.ref
            self.base_digests[build.key] = base_digest
        self.register_outputs({"refs": self.refs, "baseDigests": self.base_digests})
