"""Turn pydantic's validation errors into problems that name the document path a user wrote."""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from components.spec.problems import Path, Problem
from components.spec.secrets import secret_key


def problems_from_validation_error(error: ValidationError, data: Any, root: type[BaseModel]) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        path = _document_path(item["loc"], data)
        kind = item["type"]
        if kind == "extra_forbidden":
            problems.append(Problem(path, _unknown_key_message(path, root)))
        elif kind == "missing":
            problems.append(Problem(path, "required key is missing"))
        else:
            problems.append(Problem(path, _message(item, echo=not any(secret_key(part) for part in path))))
    return _merge_union_members(problems)


def _merge_union_members(problems: list[Problem]) -> list[Problem]:
    """A value that fits no member of a union (engineArgs: bool, int, float or str) is one problem, not one per member."""
    merged: list[Problem] = []
    for problem in problems:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and previous.path == problem.path
            and _TYPE_ONLY.match(previous.message)
            and _TYPE_ONLY.match(problem.message)
        ):
            types_ = _TYPE_ONLY.match(previous.message).group(1).replace(" or ", ", ")
            types_ = f"{types_} or {_TYPE_ONLY.match(problem.message).group(1)}"
            merged[-1] = Problem(problem.path, f"should be a valid {types_}")
        else:
            merged.append(problem)
    return merged


_TYPE_ONLY = re.compile(r"^should be a valid ([a-z]+(?:(?:, | or )[a-z]+)*)$")


def _document_path(loc: tuple[Any, ...], data: Any) -> Path:
    """Keep the parts of pydantic's location that index the document; drop union and validator tags."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            current = current[part]
            path.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            path.append(part)
        elif index == len(loc) - 1 and isinstance(current, dict) and isinstance(part, str):
            path.append(part)  # a missing key: not in the document, but it is what the user must add
    return tuple(path)


def _message(item: dict[str, Any], echo: bool = True) -> str:
    """pydantic's message, with the value when short; never the value of a secret-named key (HF_TOKEN, hf-token)."""
    message = str(item["msg"])
    message = message.removeprefix("Value error, ")
    if message.startswith("Input should be"):
        message = "should be" + message[len("Input should be") :]
    return f"{message} (got {item['input']!r})" if echo and _is_short_scalar(item.get("input")) else message


def _is_short_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60


def _unknown_key_message(path: Path, root: type[BaseModel]) -> str:
    key = str(path[-1])
    allowed = _allowed_keys(root, path[:-1])
    message = f"unknown key {key!r}"
    if not allowed:
        return message
    suggestion = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if not suggestion:
        lowered = {name.lower(): name for name in allowed}
        suggestion = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
        suggestion = [lowered[s] for s in suggestion]
    if suggestion:
        return f"{message}; did you mean {suggestion[0]}?"
    return f"{message}; expected one of: {', '.join(sorted(allowed))}"


def _allowed_keys(root: type[BaseModel], parent: Path) -> list[str]:
    """The keys valid at `parent`, found by walking the model's annotations along the path."""
    annotation: Any = root
    for part in parent:
        model = _model_in(annotation)
        if model is None:
            annotation = _item_type(annotation) if isinstance(part, int) else None
            if annotation is None:
                return []
            continue
        field = next((f for f in model.model_fields.values() if f.alias == part), None)
        if field is None:
            return []
        annotation = field.annotation
    model = _model_in(annotation)
    return [f.alias for f in model.model_fields.values() if f.alias] if model else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The spec model an annotation holds directly (through Optional, Annotated and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if typing.get_origin(annotation) in (list, dict):
            return None
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _item_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            item = _item_type(arg)
            if item is not None:
                return item
        return None
    if origin is list:
        return typing.get_args(annotation)[0]
    return None
