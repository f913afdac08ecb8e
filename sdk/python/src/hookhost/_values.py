"""Row values: Python field values to WIT ``value`` cases, checked against their columns."""

from __future__ import annotations

import dataclasses
import datetime
import operator
import uuid
from typing import Any, Callable, Mapping, NamedTuple

from ._contract import Column, ColumnType, Contract, Json

__all__ = ["RowConverter", "RowError", "Value", "row_values", "to_value"]

_S64_MIN, _S64_MAX = -(2**63), 2**63 - 1


class RowError(ValueError):
    """A row value that cannot be sent: the message names the row and column.

    The SDK turns it into an ``errored`` outcome (not retryable) for that record only.
    """


class Value(NamedTuple):
    """One WIT ``value``: ``kind`` is the case (``None`` for ``null``), ``payload`` its data.

    A named tuple rather than a frozen dataclass: one is made for every value of every row, and
    a tuple is several times cheaper to make (issue 13).
    """

    kind: ColumnType | None
    payload: Any = None


NULL = Value(None)


def _type_name(value: Any) -> str:
    return type(value).__qualname__


def _text(value: str) -> str:
    if value.isascii():
        return value  # ASCII is always valid UTF-8; the check below encodes the whole string
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise RowError(f"is not valid Unicode text ({e.reason} at {e.start})") from None
    return value


def _timestamp(value: datetime.datetime) -> str:
    offset = value.utcoffset()
    if offset is None:
        raise RowError(
            "is a naive datetime (no tzinfo); a timestamp needs an offset, "
            "e.g. datetime.now(timezone.utc) or dt.replace(tzinfo=timezone.utc)"
        )
    if offset.microseconds or offset.seconds % 60:
        raise RowError(f"has the offset {offset}, which RFC 3339 cannot express (whole minutes)")
    text = value.isoformat()
    # RFC 3339 allows both; `Z` is the common spelling of UTC (and what the Rust examples use).
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def to_value(value: Any, column: Column) -> Value:
    """The WIT value of ``value`` in ``column``; :class:`RowError` (without the column) if unfit.

    Numbers are not checked for being finite: a NaN travels to the host, which refuses it as a
    contract violation of that record.
    """
    if value is None:
        if not column.nullable:
            raise RowError("is None, but the column is required (annotate it X | None)")
        return NULL
    ty = column.ty
    if ty is ColumnType.TEXT and isinstance(value, str):
        return Value(ty, _text(value))
    if ty is ColumnType.INTEGER and isinstance(value, int) and not isinstance(value, bool):
        if not _S64_MIN <= value <= _S64_MAX:
            raise RowError(f"{value} does not fit a signed 64-bit integer")
        return Value(ty, int(value))
    if ty is ColumnType.NUMBER and isinstance(value, (int, float)) and not isinstance(value, bool):
        return Value(ty, float(value))
    if ty is ColumnType.BOOLEAN and isinstance(value, bool):
        return Value(ty, value)
    if ty is ColumnType.TIMESTAMP and isinstance(value, datetime.datetime):
        return Value(ty, _timestamp(value))
    if (
        ty is ColumnType.DATE
        and isinstance(value, datetime.date)
        and not isinstance(value, datetime.datetime)
    ):
        return Value(ty, value.isoformat())
    if ty is ColumnType.UUID and isinstance(value, uuid.UUID):
        return Value(ty, str(value))
    if ty is ColumnType.JSON:
        wrapped = value if isinstance(value, Json) else Json(value)
        try:
            return Value(ty, _text(wrapped.to_text()))
        except (TypeError, ValueError) as e:
            raise RowError(f"cannot be serialised as JSON: {e}") from None
    if ty is ColumnType.FLOAT_VECTOR and isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                raise RowError(f"item {i} is a {_type_name(item)}, not a float")
        return Value(ty, [float(item) for item in value])
    expected = {
        ColumnType.TEXT: "str",
        ColumnType.INTEGER: "int",
        ColumnType.NUMBER: "float",
        ColumnType.BOOLEAN: "bool",
        ColumnType.TIMESTAMP: "datetime.datetime",
        ColumnType.DATE: "datetime.date",
        ColumnType.UUID: "uuid.UUID",
        ColumnType.FLOAT_VECTOR: "list[float]",
    }[ty]
    raise RowError(f"is a {_type_name(value)}, expected {expected}")


def row_values(row: Any, row_class: type, contract: Contract, index: int) -> list[Value]:
    """The values of one row (an instance of ``row_class``) in column order."""
    return RowConverter(row_class, contract)(row, index)


class RowConverter:
    """Converts the rows of one class to their values in column order, each column checked.

    Built once per hook, not once per row: the field names are read once and every column gets
    a converter of its own type, whose common case (a ``str`` of ASCII text, an ``int`` in
    range, a ``float``, a ``bool``) is one type test; anything else goes through
    :func:`to_value`, so the checks and messages are the same.

    ``make`` maps each column type to what builds a value of it from its payload, and ``null``
    is the null value: by default the SDK's :class:`Value`; the component passes the generated
    WIT constructors, so no intermediate value is made per value.
    """

    __slots__ = ("row_class", "_columns", "_get", "_convert")

    def __init__(
        self,
        row_class: type,
        contract: Contract,
        make: Mapping[ColumnType, Callable[[Any], Any]] | None = None,
        null: Any = NULL,
    ) -> None:
        self.row_class = row_class
        names = tuple(f.name for f in dataclasses.fields(row_class))
        self._columns = tuple(zip(names, contract.columns))
        make = make if make is not None else _SDK_VALUES
        self._convert = tuple(_column_converter(c, make[c.ty], null) for c in contract.columns)
        getter = operator.attrgetter(*names) if names else (lambda row: ())
        # `attrgetter` of one name returns the value, of several a tuple: always a tuple here.
        self._get = (lambda row: (getter(row),)) if len(names) == 1 else getter

    def __call__(self, row: Any, index: int) -> list[Any]:
        if type(row) is not self.row_class:
            raise RowError(
                f"row {index} is a {_type_name(row)}, not a {self.row_class.__qualname__}"
            )
        try:
            return [convert(v) for convert, v in zip(self._convert, self._get(row))]
        except RowError:
            pass
        # One value did not fit: find it again, one column at a time, to name the column.
        for (name, column), convert in zip(self._columns, self._convert):
            try:
                convert(getattr(row, name))
            except RowError as e:
                raise RowError(f"row {index}, column {column.name!r}: value {e}") from None
        raise AssertionError("a row value was refused once and then accepted")


_SDK_VALUES: dict[ColumnType, Callable[[Any], Value]] = {
    ty: (lambda payload, ty=ty: Value(ty, payload)) for ty in ColumnType
}


#: Each column type's common case, tested inline; a value that fails it takes the full check.
_FITS_AS_IS: dict[ColumnType, Callable[[Any], bool]] = {
    ColumnType.TEXT: lambda v: type(v) is str and v.isascii(),
    ColumnType.INTEGER: lambda v: type(v) is int and _S64_MIN <= v <= _S64_MAX,
    ColumnType.NUMBER: lambda v: type(v) is float,
    ColumnType.BOOLEAN: lambda v: type(v) is bool,
}


def _column_converter(column: Column, make: Callable[[Any], Any], null: Any) -> Callable[[Any], Any]:
    """One column's converter: its common case inline, the rest through :func:`to_value`."""

    def general(value: Any) -> Any:
        converted = to_value(value, column)
        return null if converted.kind is None else make(converted.payload)

    fits = _FITS_AS_IS.get(column.ty)
    if fits is None:
        return general

    def convert(value: Any) -> Any:
        return make(value) if fits(value) else general(value)

    return convert
