"""The real validators every generated object goes through: kubernetes-validate (strict) for built-in
kinds, the vendored CRD schemas for custom resources."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

CRDS = Path(__file__).resolve().parents[2] / "components" / "manifests" / "crds"


def _strict(schema: Any) -> Any:
    """The API server rejects unknown fields under strict field validation (kubectl's default); plain
    JSON Schema allows them unless `additionalProperties: false` says otherwise, so add it."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


RE2_LEADING_FLAGS = "^(?i)"


def _python_patterns(schema: Any) -> Any:
    """Go's RE2 accepts a global flag after the anchor (`^(?i)...`, as in the PrometheusRule CRD's
    partial_response_strategy); Python's `re` wants it first, and jsonschema refuses the whole schema
    otherwise. Same language, flag moved."""
    if isinstance(schema, dict):
        schema = {key: _python_patterns(value) for key, value in schema.items()}
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and pattern.startswith(RE2_LEADING_FLAGS):
            schema["pattern"] = "(?i)^" + pattern.removeprefix(RE2_LEADING_FLAGS)
        return schema
    if isinstance(schema, list):
        return [_python_patterns(item) for item in schema]
    return schema


@functools.cache
def _crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, for every version of every vendored CRD."""
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = _strict(_python_patterns(version["schema"]["openAPIV3Schema"]))
    return schemas


def is_custom(obj: dict[str, Any]) -> bool:
    return (obj["apiVersion"], obj["kind"]) in _crd_schemas()


@functools.cache
def _crd_validator(api_version: str, kind: str) -> Any | None:
    """Built once per kind: `jsonschema.validate` re-checks the (large) schema itself on every call."""
    schema = _crd_schemas().get((api_version, kind))
    if schema is None:
        return None
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


ELIDED = "x-inferfleet-elided"
"""Marks a vendored CRD's embedded Kubernetes type left out of the file (components/manifests/crds/README.md)."""


def _elided_paths(schema: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    if not isinstance(schema, dict):
        return []
    if ELIDED in schema:
        return [(path, schema[ELIDED])]
    found = []
    for name, child in schema.get("properties", {}).items():
        found += _elided_paths(child, (*path, name))
    return found


def _at(obj: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(obj, dict) or name not in obj:
            return None
        obj = obj[name]
    return obj


def validate_object(obj: dict[str, Any], kubernetes_version: str) -> None:
    """Raise when the object breaks its schema: its CRD's for custom resources (with elided pod
    templates checked as Kubernetes' own PodTemplateSpec), else Kubernetes' own."""
    validator = _crd_validator(obj["apiVersion"], obj["kind"])
    if validator is None:
        kubernetes_validate.validate(obj, kubernetes_version, strict=True)
        return
    validator.validate(obj)
    for path, kind in _elided_paths(_crd_schemas()[(obj["apiVersion"], obj["kind"])]):
        template = _at(obj, path)
        if template is not None:
            assert kind == "PodTemplateSpec", kind
            wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "elided"}, "template": template}
            kubernetes_validate.validate(wrapper, kubernetes_version, strict=True)
