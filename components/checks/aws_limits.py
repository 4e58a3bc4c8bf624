"""AWS and Kubernetes limits: the GPU nodes' user data fits EC2's size limit, and the names the program gives
AWS resources and Kubernetes objects fit their services' length and format rules.

Each of these fails only at `pulumi up`, often half-way through it (EC2 refuses a launch template version,
IAM a role, the API server an object), while every schema check passes: the limits are properties of the
values, not of their shape. Three checks, one Problem each:

- user data: the raw (base64-decoded) user data of every launch template, plus USER_DATA_DEPLOY_MARGIN
  for what a deploy puts into it that a render only stands in for, stays within EC2's 16 KB;
- AWS names: the physical name each recorded resource will have (its name input, its name prefix plus the
  provider's unique suffix, or Pulumi's auto-name from its logical name) is within the limit of
  NAME_LIMITS;
- Kubernetes names: `metadata.name` and `metadata.namespace` of every object, and every label key and value
  (object and pod-template labels, selectors' `matchLabels`, pods' `nodeSelector`), follow the API
  server's rules (k8s.io/apimachinery/pkg/util/validation; the rules themselves are in
  components.manifests.names).

Pure: recorded resources (RecordedResource.to_json() dicts) and manifests in, Problems out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from components.catalog import Catalog
from components.checks import Manifests, Problem, Resources
from components.manifests.names import (
    dns1035_label_problem,
    dns1123_label_problem,
    dns1123_subdomain_problem,
    label_key_problem,
    label_value_problem,
    path_segment_problem,
)
from components.spec.naming import AUTONAME_SUFFIX, NAME_LIMITS_BY_TYPE, PREFIX_SUFFIX, NameLimit

CHECK = "aws-limits"

LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
USER_DATA_LIMIT_BYTES = 16384
"""EC2 User Guide, "Work with instance user data": "User data is limited to 16 KB, in raw form, before it is
base64-encoded." CreateLaunchTemplate(Version) refuses more with `InvalidUserData.Malformed: User data is
limited to 16384 bytes` (the base64 text itself may be up to 4/3 of that)."""
USER_DATA_DEPLOY_MARGIN_BYTES = 2048
"""Room for what a real deploy writes into the user data where a render has stand-ins.

Nothing is appended to the user data after the launch template version is created: EC2 checks its size
then, and neither cloud-init nor nodeadm adds to it (nodeadm only reads the NodeConfig the user data carries;
only EKS *managed* node groups merge a NodeConfig part of their own, and these groups are self-managed).
The cluster's CA bundle is already in it: components.aws.user_data puts EKS's `certificateAuthority.data`
into the NodeConfig (AL2023) or `settings.kubernetes.cluster-certificate` (Bottlerocket). What a render
lacks is the real value: the mocks give a 40-byte stand-in where EKS gives the base64 of its CA's PEM
(an RSA-2048 certificate: about 1.1 KB of PEM, about 1.5 KB of base64), and a 17-character endpoint id
where EKS's has 32. 2 KB covers both with room to spare; the issue's "about 1.4 KB for the CA" is the same
quantity, but it is not added at boot, it is missing from the render."""



# Kubernetes: which of apimachinery's name rules (components.manifests.names) the API server applies per kind.
DNS1035_NAMED_KINDS = frozenset({("", "Service")})
"""core/v1 Service names are DNS-1035 labels (ValidateServiceName = NameIsDNS1035Label): at most 63, and
they start with a letter (a Service name becomes a DNS label and environment variable names)."""
DNS1123_LABEL_NAMED_KINDS = frozenset({("", "Namespace")})
"""Namespace names are DNS-1123 labels (ValidateNamespaceName = NameIsDNSLabel): at most 63."""
PATH_SEGMENT_NAMED_KINDS = frozenset(
    {
        ("rbac.authorization.k8s.io", "Role"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    }
)
"""RBAC names only need to be path segments (ValidateRBACName = path.IsValidPathSegmentName): `system:` names
with colons are valid there. Every other kind's name is a DNS-1123 subdomain (at most 253)."""


def check(resources: Resources, manifests: Manifests, catalog: Catalog) -> list[Problem]:
    del catalog
    problems = list(_user_data_problems(resources))
    problems += _aws_name_problems(resources)
    problems += _kubernetes_problems(manifests)
    return problems


# --- user data -------------------------------------------------------------------------------------------


def user_data_bytes(encoded: str) -> int:
    """The raw size EC2 counts: the base64 input decoded."""
    return len(base64.b64decode(encoded, validate=True))


def _user_data_problems(resources: Resources) -> Iterator[Problem]:
    budget = USER_DATA_LIMIT_BYTES - USER_DATA_DEPLOY_MARGIN_BYTES
    for resource in resources:
        if resource.get("type") != LAUNCH_TEMPLATE:
            continue
        encoded = (resource.get("inputs") or {}).get("userData")
        if encoded is None:
            continue
        subject = _aws_subject(resource)
        if not isinstance(encoded, str):
            yield Problem(CHECK, subject, f"userData is not base64 text: {type(encoded).__name__}")
            continue
        try:
            size = user_data_bytes(encoded)
        except (binascii.Error, ValueError) as error:
            yield Problem(CHECK, subject, f"userData is not valid base64 ({error}); EC2 refuses it")
            continue
        if size > budget:
            yield Problem(
                CHECK,
                subject,
                f"user data is {size} bytes raw; with {USER_DATA_DEPLOY_MARGIN_BYTES} bytes for the cluster CA and "
                f"endpoint a deploy puts in place of the render's stand-ins it reaches "
                f"{size + USER_DATA_DEPLOY_MARGIN_BYTES}, over EC2's {USER_DATA_LIMIT_BYTES}-byte limit (raw, "
                "before base64): the launch template version would be refused; shorten the join script or the "
                "pre-pull list, or gzip the user data (cloud-init reads gzip)",
            )


# --- AWS names ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhysicalName:
    """What AWS will be asked to call a resource: the length, and how the program made it."""

    length: int
    how: str


def physical_name(resource: dict[str, Any], limit: NameLimit) -> PhysicalName | None:
    """The name input as set; a name prefix and the provider's unique suffix; or Pulumi's auto-name.
    None when the name is an unknown (a value only a deploy learns) or not a string."""
    inputs = resource.get("inputs") or {}
    name = inputs.get(limit.name_input)
    if name is not None:
        if not isinstance(name, str):
            return None
        return PhysicalName(len(name), f"{limit.name_input} {name!r}")
    prefix = inputs.get(limit.prefix_input) if limit.prefix_input else None
    if isinstance(prefix, str):
        return PhysicalName(
            len(prefix) + PREFIX_SUFFIX, f"{limit.prefix_input} {prefix!r} + a {PREFIX_SUFFIX}-character unique suffix"
        )
    logical = str(resource.get("name") or "")
    return PhysicalName(
        len(logical) + AUTONAME_SUFFIX,
        f"Pulumi's auto-name from {logical!r} (+ '-' and {AUTONAME_SUFFIX - 1} random characters)",
    )


def _aws_name_problems(resources: Resources) -> Iterator[Problem]:
    for resource in resources:
        limit = NAME_LIMITS_BY_TYPE.get(str(resource.get("type")))
        if limit is None or not resource.get("custom", True):
            continue
        name = physical_name(resource, limit)
        if name is not None and name.length > limit.max_length:
            yield Problem(
                CHECK,
                _aws_subject(resource),
                f"name is {name.length} characters ({name.how}); AWS allows at most {limit.max_length} "
                f"({limit.source})",
            )


def _aws_subject(resource: dict[str, Any]) -> str:
    return f"{resource.get('type')} {resource.get('name')}"


# --- Kubernetes names and labels ----------------------------------------------------------------------------


def _group_kind(obj: dict[str, Any]) -> tuple[str, str]:
    return str(obj.get("apiVersion") or "").rpartition("/")[0], str(obj.get("kind") or "")


def name_problem(obj: dict[str, Any]) -> str | None:
    """The API server's rule for this kind's metadata.name."""
    name = (obj.get("metadata") or {}).get("name")
    if not isinstance(name, str):
        return None
    group_kind = _group_kind(obj)
    if group_kind in DNS1035_NAMED_KINDS:
        return dns1035_label_problem(name)
    if group_kind in DNS1123_LABEL_NAMED_KINDS:
        return dns1123_label_problem(name)
    if group_kind in PATH_SEGMENT_NAMED_KINDS:
        return path_segment_problem(name)
    return dns1123_subdomain_problem(name)


def _label_maps(value: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every map of Kubernetes labels in an object: `labels` of any `metadata` (the object's, pod
    templates', RayService group templates'), `matchLabels` of any selector and pods' `nodeSelector`.
    Other maps named `labels` (a PrometheusRule's alert labels) are Prometheus labels, not Kubernetes ones."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if key == "metadata" and isinstance(item, dict) and isinstance(item.get("labels"), dict):
                yield f"{here}.labels", item["labels"]
            if key in ("matchLabels", "nodeSelector") and isinstance(item, dict):
                yield here, item
            yield from _label_maps(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _label_maps(item, f"{path}.{index}")


def _k8s_subject(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    where = f"{namespace}/" if namespace else ""
    return f"{obj.get('kind')} {where}{metadata.get('name')}"


def _kubernetes_problems(manifests: Manifests) -> Iterator[Problem]:
    for obj in manifests:
        if not isinstance(obj, dict):
            continue
        subject = _k8s_subject(obj)
        problem = name_problem(obj)
        if problem:
            yield Problem(CHECK, subject, f"metadata.name {problem}")
        namespace = (obj.get("metadata") or {}).get("namespace")
        if isinstance(namespace, str):
            problem = dns1123_label_problem(namespace)
            if problem:
                yield Problem(CHECK, subject, f"metadata.namespace {problem}")
        for where, labels in _label_maps(obj, ""):
            for key, value in labels.items():
                problem = label_key_problem(str(key))
                if problem:
                    yield Problem(CHECK, subject, f"{where}: key {key!r} {problem}")
                if not isinstance(value, str):
                    yield Problem(CHECK, subject, f"{where}.{key}: value {value!r} is not a string")
                    continue
                problem = label_value_problem(value)
                if problem:
                    yield Problem(CHECK, subject, f"{where}.{key}: value {value!r} {problem}")
