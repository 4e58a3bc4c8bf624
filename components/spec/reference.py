"""The stack spec's reference page, generated from the models so it cannot drift from them.

`python -m components.spec.reference > docs/stack-spec.md`; a test checks the file is current.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.spec.models import StackSpec


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(arg) for arg in args if arg is not type(None)]
        return " or ".join(dict.fromkeys(names))
    if origin is typing.Literal:
        return " \\| ".join(f"`{arg}`" for arg in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _nested_models(arg)]


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return "see below" if isinstance(field.default_factory(), BaseModel) else f"`{field.default_factory()!r}`"
    return f"`{field.default!r}`" if field.default is not PydanticUndefined else ""


def _rows(model: type[BaseModel], prefix: str, seen: set[type[BaseModel]]) -> list[str]:
    rows = []
    nested = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {description} |")
        for child in _nested_models(field.annotation):
            if child not in seen:
                seen.add(child)
                is_list = typing.get_origin(field.annotation) is list
                nested.append((child, f"{key}[]." if is_list else f"{key}."))
    for child, child_prefix in nested:
        rows += _rows(child, child_prefix, seen)
    return rows


def reference_markdown() -> str:
    lines = [
        "# Stack spec reference",
        "",
        "Generated from `components/spec/models.py` by `python -m components.spec.reference`; do not edit.",
        "Unknown keys are errors. `[]` marks a list item. The JSON Schema is `schema/stack.schema.json`.",
        "",
        "| key | type | default | meaning |",
        "| --- | --- | --- | --- |",
        *_rows(StackSpec, "", {StackSpec}),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
