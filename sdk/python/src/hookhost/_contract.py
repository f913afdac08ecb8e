"""Feature rows: the ``@features`` decorator, column types, and the contract derived from a class.

The contract is read from the row dataclass at decoration time, so a bad definition fails when
the module is imported — which is when componentize-py builds the component.
"""

import dataclasses
import datetime
import enum
import re
import types
import typing
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Cardinality",
    "Column",
    "ColumnType",
    "Contract",
    "DefinitionError",
    "Json",
    "contract_of",
    "features",
    "rename",
]

#: Longest feature name, in UTF-8 bytes (WIT `contract.feature`).
MAX_FEATURE_NAME_BYTES = 40
#: Longest column name, in UTF-8 bytes (WIT `column.name`).
MAX_COLUMN_NAME_BYTES = 64
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class DefinitionError(TypeError):
    """A row class, hook function or config class that cannot become a hook.

    Raised at decoration time, so a component with a bad definition does not build. The message
    names the class (and field) at fault.
    """


class ColumnType(enum.Enum):
    """The type of one feature column; the values are the WIT ``column-type`` case names."""

    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    TIMESTAMP = "timestamp"
    DATE = "date"
    UUID = "uuid"
    JSON = "json"
    FLOAT_VECTOR = "float-vector"


class Cardinality(enum.Enum):
    """How many rows a passed record has: exactly ``ONE`` or any number (``MANY``)."""

    ONE = "one"
    MANY = "many"


@dataclass(frozen=True)
class Column:
    """One typed column of the contract (WIT ``column``)."""

    name: str
    ty: ColumnType
    nullable: bool
    description: str | None = None


@dataclass(frozen=True)
class Contract:
    """What a hook outputs (WIT ``contract``): feature name, cardinality and columns in order."""

    feature: str
    cardinality: Cardinality
    columns: tuple[Column, ...]


class Json:
    """The annotation of a ``json`` column, and a wrapper for its values.

    A field annotated ``hookhost.Json`` holds any JSON-serialisable Python value (``dict``,
    ``list``, ``str``, numbers, ``bool``); it is sent as compact JSON text. ``None`` in the field
    is the column's null (so the column must be ``Json | None``); to send the JSON document
    ``null`` itself, use ``Json(None)``. ``Json.text(s)`` carries JSON text you already have
    (the host checks it).

    >>> Json({"tags": ["a", "b"]}).to_text()
    '{"tags":["a","b"]}'
    >>> Json.text('[1, 2]').to_text()
    '[1, 2]'
    """

    __slots__ = ("_value", "_text")

    def __init__(self, value: Any) -> None:
        self._value = value
        self._text: str | None = None

    @classmethod
    def text(cls, json_text: str) -> "Json":
        """A value whose JSON text is ``json_text``, sent as is."""
        if not isinstance(json_text, str):
            raise TypeError(f"Json.text needs a str, got {type(json_text).__name__}")
        made = cls(None)
        made._text = json_text
        return made

    def to_text(self) -> str:
        """The JSON text sent to the host (compact; NaN and infinities are refused)."""
        if self._text is not None:
            return self._text
        import json

        return json.dumps(self._value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Json) and self.to_text() == other.to_text()

    def __hash__(self) -> int:
        return hash(self.to_text())

    def __repr__(self) -> str:
        if self._text is not None:
            return f"Json.text({self._text!r})"
        return f"Json({self._value!r})"


@dataclass(frozen=True)
class _Rename:
    name: str


def rename(column_name: str) -> Any:
    """``Annotated`` metadata naming a field's column differently from the field.

    For a column whose name is not a usable Python field name (a keyword, say):

    >>> from typing import Annotated
    >>> @features(name="tagged", cardinality="many")
    ... class Tagged:
    ...     class_: Annotated[str, rename("class"), "The class label."]
    >>> contract_of(Tagged).columns[0].name
    'class'
    """
    return _Rename(column_name)


# Checked in this order: `bool` before `int` (a bool is an int), `datetime` before `date`.
_SCALARS: tuple[tuple[Any, ColumnType], ...] = (
    (str, ColumnType.TEXT),
    (bool, ColumnType.BOOLEAN),
    (int, ColumnType.INTEGER),
    (float, ColumnType.NUMBER),
    (datetime.datetime, ColumnType.TIMESTAMP),
    (datetime.date, ColumnType.DATE),
    (uuid.UUID, ColumnType.UUID),
    (Json, ColumnType.JSON),
)

SUPPORTED = (
    "str, int, float, bool, datetime.datetime, datetime.date, uuid.UUID, hookhost.Json, "
    "list[float], each optionally Optional[...] / ... | None and/or Annotated[..., \"description\"]"
)


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


def _renamed(annotation: Any) -> str | None:
    """The column name a field's ``Annotated[..., rename("x")]`` gives, if any (at any depth)."""
    while typing.get_origin(annotation) is typing.Annotated:
        inner, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, _Rename):
                return extra.name
        annotation = inner
    return None


def _strip_annotated(annotation: Any, where: str) -> tuple[Any, str | None]:
    """``Annotated[T, "text", ...]`` -> (T, "text"); the ``str`` metadata is the description."""
    if typing.get_origin(annotation) is not typing.Annotated:
        return annotation, None
    inner, *extras = typing.get_args(annotation)
    texts = [e for e in extras if isinstance(e, str)]
    if len(texts) > 1:
        raise DefinitionError(f"{where}: Annotated has more than one description string")
    unknown = [e for e in extras if not isinstance(e, (str, _Rename))]
    if unknown:
        raise DefinitionError(
            f"{where}: unsupported Annotated metadata {unknown[0]!r} "
            "(use a description string or hookhost.rename(...))"
        )
    inner, nested = _strip_annotated(inner, where)
    description = texts[0] if texts else nested
    if description is not None:
        description = description.strip()
        if not description:
            raise DefinitionError(f"{where}: the description is empty")
    return inner, description


def column_type_of(annotation: Any, where: str) -> tuple[ColumnType, bool, str | None]:
    """The (type, nullable, description) of a field annotation; ``where`` names it in errors."""
    annotation, description = _strip_annotated(annotation, where)
    nullable = False
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(annotation)
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1 or len(args) != 2:
            raise DefinitionError(
                f"{where}: unsupported annotation {_describe(annotation)} "
                f"(a union may only be X | None); supported: {SUPPORTED}"
            )
        nullable = True
        annotation, inner_description = _strip_annotated(rest[0], where)
        if description is None:
            description = inner_description
        origin = typing.get_origin(annotation)
    if origin is list and typing.get_args(annotation) == (float,):
        return ColumnType.FLOAT_VECTOR, nullable, description
    if isinstance(annotation, type):
        for python_type, ty in _SCALARS:
            if annotation is python_type:
                return ty, nullable, description
    raise DefinitionError(
        f"{where}: unsupported annotation {_describe(annotation)}; supported: {SUPPORTED}"
    )


def check_name(name: Any, max_bytes: int, what: str, where: str) -> None:
    """Refuses a name that is not ``[a-z][a-z0-9_]*`` within ``max_bytes``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DefinitionError(f"{where}: {what} {name!r} must match [a-z][a-z0-9_]*")
    if len(name.encode()) > max_bytes:
        raise DefinitionError(
            f"{where}: {what} {name!r} is {len(name.encode())} bytes, more than {max_bytes}"
        )


def _derive(cls: type, name: str, cardinality: str) -> Contract:
    where = cls.__qualname__
    check_name(name, MAX_FEATURE_NAME_BYTES, "feature name", where)
    try:
        kind = Cardinality(cardinality)
    except ValueError:
        raise DefinitionError(
            f"{where}: cardinality {cardinality!r} must be \"one\" or \"many\""
        ) from None
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as e:  # a string annotation that does not resolve
        raise DefinitionError(f"{where}: cannot resolve the field annotations: {e}") from None
    fields = dataclasses.fields(cls)
    if not fields:
        raise DefinitionError(f"{where}: a feature row needs at least one column (field)")
    columns = []
    seen: dict[str, str] = {}
    for field in fields:
        field_where = f"{where}.{field.name}"
        annotation = hints[field.name]
        column = _renamed(annotation) or field.name
        check_name(column, MAX_COLUMN_NAME_BYTES, "column name", field_where)
        if column in seen:
            raise DefinitionError(
                f"{field_where}: duplicate column name {column!r} (also field {seen[column]!r})"
            )
        seen[column] = field.name
        ty, nullable, description = column_type_of(annotation, field_where)
        columns.append(Column(column, ty, nullable, description))
    return Contract(name, kind, tuple(columns))


def features(*, name: str, cardinality: str):
    """Declares a class as a feature row: its fields are the columns, in order.

    ``name`` is the feature name (``[a-z][a-z0-9_]*``, at most 40 bytes) and ``cardinality``
    is ``"one"`` (exactly one row per passed record) or ``"many"``. Each field is a column named
    after it; its annotation gives the type (see the README's table), ``X | None`` makes it
    nullable and ``Annotated[X, "text"]`` describes it. The class becomes a dataclass if it is
    not one already. A definition the contract cannot express raises :class:`DefinitionError`
    here, at import time, naming the class and field.

    >>> from typing import Annotated
    >>> @features(name="language", cardinality="one")
    ... class Language:
    ...     code: Annotated[str, "ISO 639-1 code."]
    ...     confidence: float | None
    >>> [(c.name, c.ty.value, c.nullable) for c in contract_of(Language).columns]
    [('code', 'text', False), ('confidence', 'number', True)]
    """

    def decorate(cls: type) -> type:
        if not isinstance(cls, type):
            raise DefinitionError(f"@hookhost.features decorates a class, not {cls!r}")
        if not dataclasses.is_dataclass(cls):
            cls = dataclass(cls)
        cls.__hookhost_contract__ = _derive(cls, name, cardinality)
        return cls

    return decorate


def contract_of(row_class: type) -> Contract:
    """The contract of a class decorated with :func:`features`."""
    contract = row_class.__dict__.get("__hookhost_contract__")
    if not isinstance(contract, Contract):
        raise DefinitionError(
            f"{getattr(row_class, '__qualname__', row_class)!r} is not a feature row: "
            "decorate it with @hookhost.features(name=..., cardinality=...)"
        )
    return contract
