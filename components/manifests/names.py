"""Kubernetes' rules for names and labels, as the API server validates them (k8s.io/apimachinery
pkg/util/validation/validation.go, and pkg/api/validation/path for path segment names).

One home for these rules: the manifests that derive a label value (components.manifests.scheduling) and the
render's check that every name and label fits (components.checks.aws_limits) both read them here. Each
`*_problem` function returns why a value breaks the rule, or None when it follows it.
"""

from __future__ import annotations

import re

DNS1123_SUBDOMAIN_MAX = 253
DNS1123_LABEL_MAX = 63
DNS1035_LABEL_MAX = 63
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(rf"^{_DNS1123_LABEL}$")
DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
"""IsValidLabelValue's format (its length is LABEL_VALUE_MAX): empty, or alphanumerics, '-', '_' and '.'
with an alphanumeric at both ends."""
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def dns1123_subdomain_problem(value: str) -> str | None:
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        return f"is {len(value)} characters, over a DNS-1123 subdomain's {DNS1123_SUBDOMAIN_MAX}"
    if not DNS1123_SUBDOMAIN.fullmatch(value):
        return "is not a DNS-1123 subdomain (lower-case alphanumerics, '-' and '.', alphanumeric at both ends)"
    return None


def dns1123_label_problem(value: str) -> str | None:
    if len(value) > DNS1123_LABEL_MAX:
        return f"is {len(value)} characters, over a DNS-1123 label's {DNS1123_LABEL_MAX}"
    if not DNS1123_LABEL.fullmatch(value):
        return "is not a DNS-1123 label (lower-case alphanumerics and '-', alphanumeric at both ends)"
    return None


def dns1035_label_problem(value: str) -> str | None:
    if len(value) > DNS1035_LABEL_MAX:
        return f"is {len(value)} characters, over a DNS-1035 label's {DNS1035_LABEL_MAX}"
    if not DNS1035_LABEL.fullmatch(value):
        return "is not a DNS-1035 label (lower-case alphanumerics and '-', a letter first, alphanumeric last)"
    return None


def path_segment_problem(value: str) -> str | None:
    if value in (".", "..") or "/" in value or "%" in value or not value:
        return "is not a path segment name (no '/', '%', not '.' or '..')"
    return None


def label_value_problem(value: str) -> str | None:
    """IsValidLabelValue: at most 63 characters of the LABEL_VALUE format; the empty value is valid."""
    if len(value) > LABEL_VALUE_MAX:
        return f"is {len(value)} characters, over a label value's {LABEL_VALUE_MAX}"
    if not LABEL_VALUE.fullmatch(value):
        return "is not a label value (alphanumerics, '-', '_' and '.', alphanumeric at both ends, or empty)"
    return None


def label_key_problem(key: str) -> str | None:
    """A qualified name: an optional DNS-1123 subdomain prefix and '/', then a name of at most 63."""
    prefix, slash, name = key.rpartition("/")
    if slash:
        if not prefix:
            return "has an empty prefix"
        problem = dns1123_subdomain_problem(prefix)
        if problem:
            return f"prefix {prefix!r} {problem}"
    if len(name) > QUALIFIED_NAME_MAX:
        return f"name part is {len(name)} characters, over {QUALIFIED_NAME_MAX}"
    if not QUALIFIED_NAME.fullmatch(name):
        return "name part is not a qualified name (alphanumerics, '-', '_' and '.', alphanumeric at both ends)"
    return None
