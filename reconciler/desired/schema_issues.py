"""Turn pydantic's validation errors into issues at the YAML line and column they are about."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from reconciler.desired.errors import Issue
from reconciler.desired.schema import SettingError
from reconciler.desired.verify import VerifySettingError
from reconciler.desired.yamlload import Document, KeyPath, YamlValue, child, keypath_str
from reconciler.names import UnsafeNameError
from reconciler.sizes import SizeError

M = TypeVar("M", bound=BaseModel)

_TYPE_NAMES = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def _describe(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else annotation
            if len(args) != 1:
                return annotation
        else:
            return annotation


def _model_at(model: type[BaseModel], keypath: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping found at ``keypath`` (for suggesting known keys)."""
    current: Any = model
    for step in keypath:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(step))
            if field is None:
                return None
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is tuple and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unknown_key_hint(model: type[BaseModel], parent: KeyPath, key: str) -> str:
    known = _model_at(model, parent)
    if known is None:
        return "remove it"
    names = list(known.model_fields)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "known keys here: " + ", ".join(names)


def _clean_loc(loc: tuple[int | str, ...], value: YamlValue) -> tuple[KeyPath, bool]:
    """The key path in the document, and whether the error is about a mapping key rather than its value.

    pydantic puts the names of union members and validators into ``loc`` too; walking the document's
    value alongside tells them apart from keys (the last step may be a key that is missing)."""
    path: list[str | int] = []
    current = value
    for i, step in enumerate(loc):
        if step == "[key]":
            return tuple(path), True
        found, inner = child(current, step)
        if found:
            current = inner
            path.append(step)
        elif i == len(loc) - 1 and isinstance(current, dict):
            path.append(step)
    return tuple(path), False


def _message(error: ErrorDetails, keypath: KeyPath, model: type[BaseModel]) -> tuple[str, str, bool]:
    kind = error["type"]
    where = keypath_str(keypath)
    value = error.get("input")
    if kind == "extra_forbidden":
        key = str(keypath[-1]) if keypath else "?"
        return f"unknown key {key!r}", _unknown_key_hint(model, keypath[:-1], key), True
    if kind == "missing":
        return f"missing required key {where!r}", f"add {keypath[-1]}: ... here", False
    if kind in _TYPE_NAMES and not keypath:
        return f"the file must be a mapping of settings, got {_describe(value)}", "write key: value lines", False
    if kind in _TYPE_NAMES:
        return f"{where}: expected {_TYPE_NAMES[kind]}, got {_describe(value)}", _type_hint(kind), False
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{where}: {_describe(value)} is not allowed", f"use one of {expected}", False
    if kind == "value_error":
        cause = error.get("ctx", {}).get("error")
        text = str(cause) if cause is not None else error["msg"]
        return f"{where}: {text}", _value_hint(cause), False
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{where}: {value!r} is out of range ({error['msg'].lower()})", "use a value within the range", False
    if kind in ("too_short", "too_long"):
        text = error["msg"].lower().replace("tuple", "list").replace("dictionary", "mapping")
        return f"{where}: {text}", "add or remove entries", False
    return f"{where}: {error['msg']}", "fix the value", False


def _value_hint(cause: object) -> str:
    if isinstance(cause, UnsafeNameError):
        return "rename it: letters, digits, '_', '.', '+', '-', at most 63 characters, starting with a letter or digit"
    if isinstance(cause, SettingError | VerifySettingError):
        return cause.hint
    if isinstance(cause, SizeError):
        return "sizes are binary: 2G, 2GiB and 2g all mean 2 GiB; a plain number means bytes"
    return "correct the value"


def _type_hint(kind: str) -> str:
    if kind.startswith("int"):
        return "write a whole number without quotes"
    if kind.startswith("bool"):
        return "write true or false without quotes"
    if kind == "string_type":
        return "quote the value"
    if kind in ("tuple_type", "list_type"):
        return "write a list, e.g. [a, b] or one '- item' per line"
    return "write key: value pairs indented under this key"


def validate_document(model: type[M], document: Document) -> tuple[M | None, list[Issue]]:
    """Validate ``document`` against ``model``; every pydantic error becomes an issue at its location."""
    try:
        return model.model_validate(document.value), []
    except ValidationError as exc:
        issues = []
        for error in exc.errors(include_url=False):
            keypath, about_key = _clean_loc(error["loc"], document.value)
            message, hint, at_key = _message(error, keypath, model)
            if error["type"] == "missing":
                issues.append(document.issue(keypath[:-1], message, hint, at_key=True))
            else:
                issues.append(document.issue(keypath, message, hint, at_key=at_key or about_key))
        return None, issues
