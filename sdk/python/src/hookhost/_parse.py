"""Typed JSON: parse JSON text into a dataclass (a hook's config, or a record's metadata).

Errors name the path of the value that did not fit, e.g. ``required[1]: expected str, got int``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from typing import Any

__all__ = ["ParseError", "parse_json", "parse_value"]


class ParseError(ValueError):
    """JSON that does not fit the expected type; the message starts with the path at fault."""


_JSON_NAMES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _got(value: Any) -> str:
    return _JSON_NAMES.get(type(value), type(value).__qualname__)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_unicode(value: Any) -> None:
    """Refuses lone surrogates (``"\\ud800"``), which are not Unicode text: like serde_json."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a string holds a lone surrogate escape") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


#: A ``\\u`` escape of a surrogate (U+D800..U+DFFF). It may also match an escaped backslash
#: followed by ``ud8..``, which only costs the full check in :func:`load_json`.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: The same, or a surrogate in the text itself (only a non-ASCII ``str`` can hold one).
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")


def load_json(text: str) -> Any:
    """Strict JSON: no ``NaN``/``Infinity``, no lone surrogates (as the Rust SDK's serde_json)."""
    value = json.loads(text, parse_constant=_refuse_constant)
    # A parsed string can hold a surrogate only if the text holds or escapes one: the value is
    # walked only then, so well-formed text is not encoded again, string by string.
    if text.isascii():
        suspect = "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None
    else:
        suspect = _SURROGATE.search(text) is not None
    if suspect:
        _check_unicode(value)
    return value


def parse_json(tp: Any, text: str, *, unknown_fields: str = "error") -> Any:
    """Parses JSON ``text`` into ``tp`` (see :func:`parse_value`)."""
    try:
        value = load_json(text)
    except ValueError as e:
        raise ParseError(f"not valid JSON: {e}") from None
    return parse_value(tp, value, unknown_fields=unknown_fields)


def parse_value(tp: Any, value: Any, *, unknown_fields: str = "error", path: str = "") -> Any:
    """Converts a parsed JSON value into ``tp``.

    ``tp`` may be a dataclass (fields by name; a field with a default may be missing), ``str``,
    ``int``, ``float`` (an integer is accepted), ``bool``, ``None``, ``Any``, ``list[T]``,
    ``dict[str, T]``, ``Literal[...]``, ``Optional[T]`` / ``T | None``. ``unknown_fields`` is
    ``"error"`` (an unexpected object key is refused, naming it) or ``"ignore"``.
    """
    def fail(message: str) -> ParseError:
        return ParseError(f"{path}: {message}" if path else message)

    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return parse_value(typing.get_args(tp)[0], value, unknown_fields=unknown_fields, path=path)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return parse_value(rest[0], value, unknown_fields=unknown_fields, path=path)
        raise fail(f"unsupported type {tp!r} (only X | None unions)")
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        raise fail(f"expected one of {', '.join(json.dumps(c) for c in choices)}, got {value!r}")
    if origin is list:
        (item_type,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise fail(f"expected an array, got {_got(value)}")
        return [
            parse_value(item_type, item, unknown_fields=unknown_fields, path=f"{path}[{i}]")
            for i, item in enumerate(value)
        ]
    if origin is dict:
        key_type, item_type = typing.get_args(tp) or (str, Any)
        if key_type is not str:
            raise fail(f"unsupported type {tp!r} (object keys are str)")
        if not isinstance(value, dict):
            raise fail(f"expected an object, got {_got(value)}")
        return {
            k: parse_value(item_type, v, unknown_fields=unknown_fields, path=_join(path, k))
            for k, v in value.items()
        }
    if tp is list or tp is dict:
        return parse_value(tp[Any] if tp is list else dict[str, Any], value,
                           unknown_fields=unknown_fields, path=path)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _parse_dataclass(tp, value, unknown_fields, path, fail)
    if tp is type(None) or tp is None:
        if value is None:
            return None
        raise fail(f"expected null, got {_got(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail(f"expected a boolean, got {_got(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail(f"expected an integer, got {_got(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise fail(f"expected a number, got {_got(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail(f"expected a string, got {_got(value)}")
    raise fail(f"unsupported type {tp!r}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_optional(tp: Any) -> bool:
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(tp)


def _parse_dataclass(tp: type, value: Any, unknown_fields: str, path: str, fail) -> Any:
    if not isinstance(value, dict):
        raise fail(f"expected an object ({tp.__qualname__}), got {_got(value)}")
    hints = typing.get_type_hints(tp, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
    if unknown_fields == "error":
        for key in value:
            if key not in fields:
                known = ", ".join(fields) or "none"
                raise ParseError(f"{_join(path, key)}: unknown field (known fields: {known})")
    kwargs = {}
    for name, field in fields.items():
        if name in value:
            kwargs[name] = parse_value(
                hints[name], value[name], unknown_fields=unknown_fields, path=_join(path, name)
            )
        elif (
            field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING
        ):
            if _is_optional(hints[name]):  # like serde: a missing Option is None
                kwargs[name] = None
            else:
                raise ParseError(f"{_join(path, name)}: missing field")
    try:
        return tp(**kwargs)
    except (ValueError, TypeError) as e:  # a __post_init__ check
        raise fail(str(e)) from None
