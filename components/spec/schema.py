"""The stack spec's JSON Schema, for editors (yaml-language-server) and for checks outside the project."""

from __future__ import annotations

from typing import Any

from components.spec.models import StackSpec


def stack_json_schema() -> dict[str, Any]:
    schema = StackSpec.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **schema,
        "title": "inferfleet stack",
    }
