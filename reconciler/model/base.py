"""Immutable value objects shared by every layer, and the one way they are read back from JSON-like data.

The models are plain frozen classes, neither pydantic models nor generated dataclasses: a one-shot command
such as `reconciler plan` defines some sixty of them at start-up, and importing pydantic and building its
model classes, or having `dataclasses` compile five methods per class, cost more than the `vgs` and `lvs` a
plan needs (benchmarks/bench_cli.py). Here a class costs one pass over its annotations, and its methods are
shared. Pydantic stays where its messages matter: on the files people write (reconciler.desired).

A model is declared like a dataclass (annotated fields, defaults, ``field(default_factory=...)`` for a
mutable one), built by keyword only, equal and hashable by value, and immutable. What a model reads back is
data this project wrote (the state directory's records and caches, a peer daemon's status):
``model_validate`` checks it strictly against the annotations (no unknown or missing field, every value of
its declared type; lists are accepted for tuples and integers for floats, as JSON has them) and raises
:class:`ModelDataError` naming the field. Construction in code is not checked at run time: mypy --strict
checks it.
"""

from __future__ import annotations

import json
import math
import sys
import types
import typing
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn, Self

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:
    def dataclass_transform(**_: object) -> Callable[[type], type]:
        return lambda cls: cls


class ModelDataError(ValueError):
    """Data that does not fit a model; the message names the field and what was wrong."""


class FrozenModelError(AttributeError):
    """An attempt to change a field of a model (use ``model_copy(update=...)``)."""


Decoder = Callable[[Any, str], Any]


class _Factory:
    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], Any]) -> Any:
    """A field whose default is made afresh for every instance (a dictionary, say)."""
    return _Factory(default_factory)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
class Frozen:
    """An immutable value object: every field given by keyword, equal and hashable by value."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _field_set: ClassVar[frozenset[str]] = frozenset()
    _required: ClassVar[frozenset[str]] = frozenset()
    _defaults: ClassVar[dict[str, Any]] = {}
    _factories: ClassVar[dict[str, Callable[[], Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names: dict[str, None] = dict.fromkeys(cls._fields)
        defaults = dict(cls._defaults)
        factories = dict(cls._factories)
        # Not inspect.get_annotations: importing inspect costs start-up time, and 3.11 keeps them here.
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
            if "ClassVar" in str(annotation):
                continue
            names[name] = None
            defaults.pop(name, None)
            factories.pop(name, None)
            if name in cls.__dict__:
                value = cls.__dict__[name]
                if isinstance(value, _Factory):
                    factories[name] = value.make
                    delattr(cls, name)
                else:
                    defaults[name] = value
        cls._fields = tuple(names)
        cls._field_set = frozenset(names)
        cls._required = frozenset(names) - defaults.keys() - factories.keys()
        cls._defaults = defaults
        cls._factories = factories

    if not TYPE_CHECKING:  # mypy sees the signature dataclass_transform gives each model
        def __init__(self, **values: Any) -> None:
            cls = type(self)
            if not cls._required <= values.keys() or not values.keys() <= cls._field_set:
                _bad_arguments(cls, values)
            state = self.__dict__
            state.update(cls._defaults)
            for name, make in cls._factories.items():
                if name not in values:
                    state[name] = make()
            state.update(values)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise FrozenModelError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise FrozenModelError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        state = self.__dict__
        return hash((self.__class__, *(state[name] for name in self._fields)))

    def __repr__(self) -> str:
        state = self.__dict__
        return f"{type(self).__name__}({', '.join(f'{name}={state[name]!r}' for name in self._fields)})"

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Self:
        """A copy with ``update``'s fields replaced."""
        if not update:
            return self
        if not update.keys() <= self._field_set:
            _bad_arguments(type(self), update)
        copy = object.__new__(type(self))
        state = copy.__dict__
        state.update(self.__dict__)
        state.update(update)
        return copy

    def model_dump(self, *, mode: Literal["python", "json"] = "python",
                   exclude: Collection[str] = ()) -> dict[str, Any]:
        """The fields as plain data, nested models as dictionaries; ``json`` mode turns tuples into lists."""
        as_json = mode == "json"
        state = self.__dict__
        return {name: _dump(state[name], as_json) for name in self._fields if name not in exclude}

    def model_dump_json(self, *, indent: int | None = None) -> str:
        separators = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.model_dump(mode="json"), indent=indent, separators=separators, ensure_ascii=False)

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """``data`` (parsed JSON) as this model, checked strictly; raises ModelDataError."""
        value: Self = _class_decoder(cls)(data, cls.__name__)
        return value

    @classmethod
    def model_validate_json(cls, text: str | bytes) -> Self:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelDataError(f"{cls.__name__}: not JSON: {exc}") from exc
        return cls.model_validate(data)


def _bad_arguments(cls: type[Frozen], values: dict[str, Any]) -> NoReturn:
    unknown = sorted(values.keys() - cls._field_set)
    missing = sorted(cls._required - values.keys())
    problems = ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) + (
        [f"missing field(s) {', '.join(missing)}"] if missing else [])
    raise TypeError(f"{cls.__name__}: {'; '.join(problems)}")


def _dump(value: Any, as_json: bool) -> Any:
    if isinstance(value, Frozen):
        return value.model_dump(mode="json" if as_json else "python")
    if isinstance(value, tuple):
        items = [_dump(item, as_json) for item in value]
        return items if as_json else tuple(items)
    if isinstance(value, list):
        return [_dump(item, as_json) for item in value]
    if isinstance(value, dict):
        return {key: _dump(item, as_json) for key, item in value.items()}
    if as_json and isinstance(value, float) and not math.isfinite(value):
        # JSON has no NaN or infinity; readers such as jq refuse them (pydantic wrote null as well).
        return None
    return value


_CLASS_DECODERS: dict[type[Frozen], Decoder] = {}


_EVALUATED: dict[tuple[str, str], Any] = {}


def _field_annotations(cls: type[Frozen]) -> dict[str, Any]:
    """The fields' annotations, evaluated in the module of the class that declares each (what
    typing.get_type_hints does, but each distinct text once: compiling them is most of a decoder's cost)."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        namespace = vars(sys.modules[klass.__module__])
        for name, text in klass.__dict__.get("__annotations__", {}).items():  # noqa: RUF063  (see Frozen.__init_subclass__)
            if name not in cls._field_set:
                continue
            if not isinstance(text, str):
                found[name] = text
                continue
            key = (klass.__module__, text)
            if key not in _EVALUATED:
                _EVALUATED[key] = eval(text, namespace)  # noqa: S307  (the module's own annotation text)
            found[name] = _EVALUATED[key]
    return found


def _class_decoder(cls: type[Frozen]) -> Decoder:
    """The decoder of one model, built on its first use (and by tests/core/test_models_build.py for all)."""
    found = _CLASS_DECODERS.get(cls)
    if found is not None:
        return found
    hints = _field_annotations(cls)
    fields = [(name, decoder_for(hints[name])) for name in cls._fields]
    names = cls._field_set
    required = cls._required

    def decode(data: Any, path: str) -> Any:
        if isinstance(data, cls):
            return data
        if not isinstance(data, dict):
            raise ModelDataError(f"{path}: expected an object, got {_kind(data)}")
        unknown = data.keys() - names
        if unknown:
            raise ModelDataError(f"{path}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        missing = required - data.keys()
        if missing:
            raise ModelDataError(f"{path}: missing field(s) {', '.join(sorted(missing))}")
        return cls(**{name: field_decoder(data[name], f"{path}.{name}")
                      for name, field_decoder in fields if name in data})

    _CLASS_DECODERS[cls] = decode
    return decode


def decoder_for(annotation: Any) -> Decoder:
    """The decoder of one annotation; raises TypeError for a kind of annotation the models do not use."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return lambda value, _path: value
    if annotation is type(None):
        return _exact(type(None), "null")
    if annotation is bool:
        return _exact(bool, "a boolean")
    if annotation is int:
        return _exact(int, "an integer")
    if annotation is str:
        return _exact(str, "a string")
    if annotation is float:
        return _float
    if isinstance(annotation, type) and issubclass(annotation, Frozen):
        return _class_decoder(annotation)
    if origin is Literal:
        return _literal(args)
    if origin in (typing.Union, types.UnionType):
        return _union(tuple(decoder_for(arg) for arg in args))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _sequence(decoder_for(args[0]), tuple)
        return _fixed_tuple(tuple(decoder_for(arg) for arg in args))
    if origin is list:
        return _sequence(decoder_for(args[0]), list)
    if origin is dict:
        # JSON names are strings: a number key comes back as its digits.
        key = _int_key if args[0] is int else decoder_for(args[0])
        return _mapping(key, decoder_for(args[1]))
    raise TypeError(f"no decoder for the annotation {annotation!r}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _exact(expected: type, what: str) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        if type(value) is not expected:  # not isinstance: True is no integer here
            raise ModelDataError(f"{path}: expected {what}, got {_kind(value)}")
        return value
    return decode


def _float(value: Any, path: str) -> float:
    if type(value) not in (int, float):
        raise ModelDataError(f"{path}: expected a number, got {_kind(value)}")
    return float(value)


def _int_key(value: Any, path: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise ModelDataError(f"{path}: expected an integer, got {value!r}")


def _literal(allowed: tuple[Any, ...]) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        for option in allowed:
            if type(value) is type(option) and value == option:
                return option
        raise ModelDataError(f"{path}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return decode


def _union(options: tuple[Decoder, ...]) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        problems = []
        for option in options:
            try:
                return option(value, path)
            except ModelDataError as exc:
                problems.append(str(exc))
        raise ModelDataError("; or ".join(problems))
    return decode


def _sequence(item: Decoder, kind: type[tuple[Any, ...]] | type[list[Any]]) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise ModelDataError(f"{path}: expected a list, got {_kind(value)}")
        return kind(item(element, f"{path}[{index}]") for index, element in enumerate(value))
    return decode


def _fixed_tuple(items: tuple[Decoder, ...]) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple) or len(value) != len(items):
            raise ModelDataError(f"{path}: expected a list of {len(items)}, got {_kind(value)}")
        pairs = enumerate(zip(items, value, strict=True))
        return tuple(item(element, f"{path}[{index}]") for index, (item, element) in pairs)
    return decode


def _mapping(key: Decoder, item: Decoder) -> Decoder:
    def decode(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise ModelDataError(f"{path}: expected an object, got {_kind(value)}")
        return {key(name, f"{path} key"): item(element, f"{path}[{name!r}]") for name, element in value.items()}
    return decode
