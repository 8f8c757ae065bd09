"""Typed command arguments: every command takes one object, checked field by field.

An unknown or ill-typed field is an ``InvalidParams`` error whose message names the field, so a
script author sees what to fix instead of a stack trace.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, TypeVar, get_args, get_origin

from pygls.exceptions import JsonRpcInvalidParams

from ktl_lsp.errors import clip

T = TypeVar("T")


class ArgumentError(JsonRpcInvalidParams):
    pass


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (list, dict):
        return {list: "array", dict: "object"}[origin]
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(tp, str(tp))


def _json_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _same_shape(value: Any, tp: Any) -> bool:
    origin = get_origin(tp) or tp
    if origin is Literal:
        return value in get_args(tp)
    if origin is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin) if isinstance(origin, type) else True


def _convert(name: str, value: Any, tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        # Prefer the option whose JSON shape matches, so the error points inside the value.
        for opt in options:
            if _same_shape(value, opt):
                return _convert(name, value, opt)
        expected = " or ".join(_type_name(o) for o in options)
        raise ArgumentError(f"field '{name}': expected {expected}, got {_json_name(value)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ArgumentError(
                f"field '{name}': expected one of {_type_name(tp)}, got {clip(repr(value))}"
            )
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if not isinstance(value, list):
            raise ArgumentError(f"field '{name}': expected array, got {_json_name(value)}")
        return [_convert(f"{name}[{i}]", v, item_tp) for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise ArgumentError(f"field '{name}': expected object, got {_json_name(value)}")
        return {str(k): _convert(f"{name}.{k}", v, val_tp) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ArgumentError(f"field '{name}': expected boolean, got {_json_name(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ArgumentError(f"field '{name}': expected integer, got {_json_name(value)}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ArgumentError(f"field '{name}': expected number, got {_json_name(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ArgumentError(f"field '{name}': expected string, got {_json_name(value)}")
        return value
    raise TypeError(f"unsupported argument type {tp!r}")  # a programming error, not user input


def parse(cls: type[T], arguments: tuple[Any, ...] | list[Any]) -> T:
    """Builds ``cls`` (a dataclass) from executeCommand's ``arguments``."""
    if len(arguments) > 1:
        raise ArgumentError(f"expected one argument object, got {len(arguments)} arguments")
    raw = arguments[0] if arguments else {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ArgumentError(f"expected an argument object, got {_json_name(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    known = {f.metadata.get("json", f.name): f.name for f in fields.values()}
    for key in raw:
        if key not in known:
            raise ArgumentError(f"unknown field '{key}'")
    values: dict[str, Any] = {}
    for json_name, attr in known.items():
        f = fields[attr]
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if json_name not in raw:
            if required:
                raise ArgumentError(f"missing field '{json_name}'")
            continue
        values[attr] = _convert(json_name, raw[json_name], hints[attr])
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if callable(check):
        check()
    return obj


def json_name(name: str) -> dict[str, str]:
    """Field metadata for a JSON key that is not a valid Python name."""
    return {"json": name}


@dataclasses.dataclass(kw_only=True)
class TokenArgs:
    """Commands that show a session's progress accept the client's token for it."""

    #: progress token for the session (the request's own ``workDoneToken`` when absent)
    workDoneToken: int | str | None = None


@dataclasses.dataclass(kw_only=True)
class StartArgs(TokenArgs):
    """What every command that starts a session accepts besides its own fields."""

    detach: bool = False  #: answer at once with the running session instead of at its end


def lenient(cls: type[T], raw: Any, where: str, problems: list[str]) -> T:
    """Builds ``cls`` (a dataclass of settings) from ``raw``, keeping the default of every value
    that does not fit and saying why in ``problems``.

    A field's JSON key is its ``json`` metadata (an empty one is not a setting); nested
    dataclasses are sections (``retention.maxSessions``); ``cls.check()``, when there is one,
    judges each value on its own (with the others at their defaults), and a list that fails is
    kept item by item. Unknown keys inside a section are reported, at the top level ignored.
    """
    label = f"setting '{where}'" if where else "initializationOptions"
    if not isinstance(raw, dict):
        problems.append(f"{label} should be an object; using defaults")
        return cls()
    hints = typing.get_type_hints(cls)
    fields = {f.metadata.get("json", f.name): f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    defaults = cls()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        f = fields.get(key)
        name = f"{where}.{key}" if where else key
        if f is None or not key:
            if where:
                problems.append(f"unknown setting '{name}'; ignored")
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            values[f.name] = lenient(tp, value, name, problems)
            continue
        default = getattr(defaults, f.name)
        if get_origin(tp) is list and isinstance(value, list):
            (item_tp,) = get_args(tp)
            values[f.name] = [
                item
                for i, raw_item in enumerate(value)
                if (
                    item := _lenient_value(
                        defaults,
                        f.name,
                        f"{name}[{i}]",
                        raw_item,
                        item_tp,
                        problems,
                        "ignored",
                        as_item=True,
                    )
                )
                is not _BAD
            ]
            continue
        converted = _lenient_value(
            defaults, f.name, name, value, tp, problems, f"using {default!r}", as_item=False
        )
        if converted is not _BAD:
            values[f.name] = converted
    return dataclasses.replace(defaults, **values)  # type: ignore[type-var]


_BAD = object()


def _lenient_value(
    defaults: Any,
    attr: str,
    name: str,
    value: Any,
    tp: Any,
    problems: list[str],
    fallback: str,
    as_item: bool,
) -> Any:
    """``value`` converted and checked, or ``_BAD`` after saying why in ``problems``."""
    try:
        converted = _convert(name, value, tp)
    except ArgumentError as exc:
        problems.append(f"setting {str(exc).removeprefix('field ')}; {fallback}")
        return _BAD
    why = _problem(defaults, attr, [converted] if as_item else converted)
    if why is not None:
        problems.append(f"setting '{name}': {why}; {fallback}")
        return _BAD
    return converted


def _problem(defaults: Any, attr: str, value: Any) -> str | None:
    check = getattr(defaults, "check", None)
    if check is None:
        return None
    try:
        dataclasses.replace(defaults, **{attr: value}).check()
    except ValueError as exc:
        return str(exc)
    return None
