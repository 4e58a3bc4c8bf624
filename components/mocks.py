"""Pulumi's mock engine with plausible cloud outputs, recording every resource the program registers.

`inferfleet render` and the infrastructure tests run the real program under these mocks: no CLI,
no credentials. Outputs look like AWS's (IDs, ARNs, endpoints) so that inputs which depend on
them are filled in rather than left unknown.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf import json_format
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings

ACCOUNT = "123456789012"
SECRET_SIGNATURE_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIGNATURE = "1b47061264138c4ac30d75fd1eb44270"
MASK = "[secret]"
ORGANIZATION = "organization"
"""What a self-managed backend (s3://, file://) names every stack's organization."""


@dataclass
class RecordedResource:
    """One registered resource as the engine saw it: what `resources.json` lists."""

    type: str
    name: str
    urn: str
    parent: str
    provider: str
    custom: bool
    inputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "name": self.name,
            "urn": self.urn,
            "parent": self.parent or None,
            "provider": self.provider or None,
            "custom": self.custom,
            "inputs": self.inputs,
            "options": self.options,
        }


def _short_hash(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _masked(value: Any) -> Any:
    """Replace every secret value (Pulumi's signature-wrapped form) with a mask, and give back the
    integers that the engine's protobuf Struct carried as doubles."""
    if isinstance(value, dict):
        if value.get(SECRET_SIGNATURE_KEY) == SECRET_SIGNATURE and "value" in value:
            return MASK
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class CloudMocks(pulumi.runtime.Mocks):
    """Plausible AWS and Kubernetes outputs for each resource and data-source call."""

    def __init__(self, region: str, stack_outputs: dict[str, dict[str, Any]] | None = None):
        self.region = region
        self.stack_outputs = stack_outputs or {}
        """Fully qualified stack name -> its outputs, for the StackReferences a program reads."""

    def arn(self, service: str, resource: str, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:aws:{service}:{region}:{ACCOUNT}:{resource}"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        token = args.typ
        name = args.name
        inputs = dict(args.inputs)
        if token == "pulumi:pulumi:StackReference":
            stack = str(inputs.get("name") or args.resource_id or name)
            if stack not in self.stack_outputs:
                raise ValueError(f"no outputs mocked for stack {stack!r}; mocked: {sorted(self.stack_outputs)}")
            return stack, {"name": stack, "outputs": self.stack_outputs[stack], "secretOutputNames": []}
        suffix = _short_hash(token, name)
        outputs: dict[str, Any] = dict(inputs)
        resource_id = f"{name}-{suffix[:8]}"
        kind = token.split(":")[-1]
        prefixes = {
            "Vpc": "vpc", "Subnet": "subnet", "InternetGateway": "igw", "NatGateway": "nat", "Eip": "eipalloc",
            "RouteTable": "rtb", "SecurityGroup": "sg", "VpcEndpoint": "vpce", "LaunchTemplate": "lt",
            "FlowLog": "fl",
        }
        if kind in prefixes:
            resource_id = f"{prefixes[kind]}-{suffix}"
        if kind == "Vpc":
            outputs.setdefault("defaultSecurityGroupId", f"sg-{_short_hash(name, 'default')}")
        if kind == "LaunchTemplate":
            outputs["latestVersion"] = 1
        if kind == "Role":
            role_name = inputs.get("name") or f"{name}-{suffix[:7]}"
            outputs.update(name=role_name, arn=self.arn("iam", f"role/{role_name}", regional=False))
            resource_id = role_name
        elif kind == "Policy" and token.startswith("aws:iam"):
            outputs["arn"] = self.arn("iam", f"policy/{name}-{suffix[:7]}", regional=False)
        elif kind == "Key":
            resource_id = f"{suffix}-{_short_hash(name, 'key', length=8)}"
            outputs["arn"] = self.arn("kms", f"key/{resource_id}")
            outputs["keyId"] = resource_id
        elif kind == "Cluster" and token.startswith("aws:eks"):
            cluster_name = inputs.get("name") or name
            resource_id = cluster_name
            outputs.update(
                name=cluster_name,
                arn=self.arn("eks", f"cluster/{cluster_name}"),
                endpoint=f"https://{suffix.upper()}.gr7.{self.region}.eks.amazonaws.com",
                certificateAuthority={"data": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
                identities=[{"oidcs": [{"issuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{suffix.upper()}"}]}],
                status="ACTIVE",
            )
        elif kind == "Bucket" or kind == "BucketV2":
            bucket = inputs.get("bucket") or f"{name}-{suffix[:8]}"
            resource_id = bucket
            outputs.update(bucket=bucket, arn=f"arn:aws:s3:::{bucket}")
        elif kind == "Queue":
            queue = inputs.get("name") or f"{name}-{suffix[:7]}"
            outputs.update(
                name=queue,
                arn=self.arn("sqs", queue),
                url=f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT}/{queue}",
            )
            resource_id = outputs["url"]
        elif kind == "Repository" and token.startswith("aws:ecr"):
            repository = inputs.get("name") or name
            outputs.update(
                arn=self.arn("ecr", f"repository/{repository}"),
                repositoryUrl=f"{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com/{repository}",
            )
        elif kind == "Group" and token.startswith("aws:autoscaling"):
            group = inputs.get("name") or f"{name}-{suffix[:7]}"
            resource_id = group
            outputs.update(name=group, arn=self.arn("autoscaling", f"autoScalingGroup:{suffix}:autoScalingGroupName/{group}"))
        elif kind == "OpenIdConnectProvider":
            url = str(inputs.get("url", "")).removeprefix("https://")
            outputs["arn"] = self.arn("iam", f"oidc-provider/{url}", regional=False)
        elif kind == "NodeGroup":
            outputs.setdefault("arn", self.arn("eks", f"nodegroup/{name}/{suffix}"))
        elif kind == "Gateway" and token.startswith("kubernetes:"):
            outputs["status"] = {"addresses": [{"type": "Hostname", "value": f"a{suffix}.elb.{self.region}.amazonaws.com"}]}
        elif token == "docker-build:index:Image":
            # What a push reports: a digest of what was built (here, of the build's inputs) and the pushed ref.
            digest = "sha256:" + hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
            tags = inputs.get("tags") or []
            outputs.update(digest=digest, ref=f"{tags[0]}@{digest}" if tags else digest, contextHash=suffix)
            return resource_id, outputs
        if token.startswith("kubernetes:"):
            return resource_id, outputs
        outputs.setdefault("arn", self.arn(token.split(":")[1].split("/")[0], f"{kind.lower()}/{resource_id}"))
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/render", "userId": "AIDAMOCK"}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region}
        if token == "aws:ssm/getParameter:getParameter":
            return {"name": args.args.get("name"), "value": f"ami-{_short_hash(str(args.args.get('name')))}",
                    "type": "String"}
        if token == "aws:iam/getPolicyDocument:getPolicyDocument":
            return {"json": json.dumps(args.args, sort_keys=True)}
        if token == "aws:eks/getAddonVersion:getAddonVersion":
            return {"version": "v0.0.0-mock"}
        if token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": "mock-ecr-token", "registryId": args.args.get("registryId", ACCOUNT),
                    "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{self.region}.amazonaws.com"}
        if token == "docker:index/getRegistryImage:getRegistryImage":
            name = str(args.args.get("name"))
            return {"name": name, "sha256Digest": "sha256:" + hashlib.sha256(name.encode()).hexdigest()}
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, also keeping each registration's parent, provider and options."""

    def __init__(self, mocks: pulumi.runtime.Mocks):
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []

    def ReadResource(self, request):  # noqa: N802 - the engine's gRPC method name
        """A read of an existing resource (a StackReference): recorded too, so a render shows what it reads."""
        response = super().ReadResource(request)
        raw = json_format.MessageToDict(request.properties, preserving_proto_field_name=True)
        self.recorded.append(RecordedResource(
            type=request.type, name=request.name, urn=response.urn, parent=request.parent,
            provider=request.provider, custom=True, inputs=_masked(raw), options={"read": request.id},
        ))
        return response

    def RegisterResource(self, request):  # noqa: N802 - the engine's gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            raw = json_format.MessageToDict(request.object, preserving_proto_field_name=True)
            self.recorded.append(
                RecordedResource(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    provider=request.provider,
                    custom=bool(request.custom),
                    inputs=_masked(raw),
                    options={
                        "protect": bool(request.protect),
                        "dependsOn": sorted(request.dependencies),  # the runtime's order varies from run to run
                        "deletedWith": request.deletedWith or None,
                        "ignoreChanges": list(request.ignoreChanges),
                        "aliases": [json_format.MessageToDict(alias) for alias in request.aliases],
                    },
                )
            )
        return response


def _quiet_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The default handler, except for a failed future or task nobody awaited. A failed program leaves those
    behind (its error is raised, and render reports it); the garbage collector finds them at any later moment
    and the default handler would log `Future exception was never retrieved` with a traceback there: after the
    command's one line, or in the middle of another `ast.parse` (pytest imports modules that way), where the
    traceback's carets (CPython 3.11 parses the source line) reset the outer parse's recursion counter, which
    then fails with `SystemError: AST constructor recursion depth mismatch` (seen in this test suite)."""
    if str(context.get("message", "")).endswith("exception was never retrieved"):
        return
    loop.default_exception_handler(context)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(_quiet_exception_handler)
    return loop


def _open_event_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop, a new one if it has none or a closed one: the runtime finds it through
    asyncio.get_event_loop(), which no longer makes one implicitly in newer Pythons."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            loop = asyncio.get_event_loop()
        except RuntimeError:
            loop = None
    if loop is None or loop.is_closed():
        loop = _new_event_loop()
        asyncio.set_event_loop(loop)
    return loop


@contextmanager
def owned_event_loops() -> Iterator[asyncio.AbstractEventLoop]:
    """Run a program under mocks on event loops that are all closed on the way out, even when it fails.

    Pulumi's runtime runs on this thread's event loop and calls the mock monitor in that loop's default
    executor; every worker thread makes an event loop of its own there (pulumi.runtime.sync_await's
    `_ensure_event_loop`), and nothing closes any of them. Left open, they are closed by the garbage collector
    whenever it gets to them: after a failed render, or while the interpreter shuts down and the worker threads
    end. That prints `Exception ignored in: <function BaseEventLoop.__del__>` with a traceback (ResourceWarning
    `unclosed event loop`) under `-W error`, `-X dev` and pytest, and can fail outright late in shutdown.
    Here the main loop, its executor and each worker's loop are made and closed by us; what the program left
    pending is cancelled first, and what it left failed is not printed later (`_quiet_exception_handler`).
    The thread is left with no current loop (`install` makes one when needed)."""
    worker_loops: list[asyncio.AbstractEventLoop] = []
    lock = threading.Lock()

    def worker_loop() -> None:
        loop = _new_event_loop()
        asyncio.set_event_loop(loop)
        with lock:
            worker_loops.append(loop)

    main = _new_event_loop()
    executor = ThreadPoolExecutor(thread_name_prefix="pulumi-mocks", initializer=worker_loop)
    main.set_default_executor(executor)
    asyncio.set_event_loop(main)
    try:
        yield main
    finally:
        try:
            pending = asyncio.all_tasks(main)
            for task in pending:
                task.cancel()
            if pending:
                main.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            main.run_until_complete(main.shutdown_asyncgens())
        finally:
            executor.shutdown(wait=True, cancel_futures=True)  # the workers end; their loops are still listed
            for loop in worker_loops:
                loop.close()
            main.close()
            asyncio.set_event_loop(None)


def install(project: str, stack: str, region: str,
            stack_outputs: dict[str, dict[str, Any]] | None = None) -> RecordingMonitor:
    """Point the Pulumi runtime at recording mocks; returns the monitor holding the recorded resources.
    `stack_outputs`: what StackReferences to other stacks read (fully qualified name -> outputs).
    Each install gets a root Stack of its own: the runtime keeps the first one otherwise, so a second program in
    one process would parent its resources to the first program's stack (another stack name in every URN)."""
    _open_event_loop()
    pulumi_settings.ROOT.set(None)
    monitor = RecordingMonitor(CloudMocks(region, stack_outputs))
    pulumi.runtime.set_mocks(monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor,
                             organization=ORGANIZATION)
    return monitor
