"""Row values: every column type to its WIT value, and the errors that name row and column."""

from __future__ import annotations

import datetime
import math
import uuid
from datetime import timedelta, timezone
from typing import Annotated

import pytest

import hookhost
from hookhost import Column, ColumnType, Json, RowError, Value
from hookhost._values import NULL, RowConverter, _column_converter, row_values, to_value

UTC = timezone.utc


def col(ty: ColumnType, nullable: bool = False) -> Column:
    return Column("c", ty, nullable)


@pytest.mark.parametrize(
    "ty, value, expected",
    [
        (ColumnType.TEXT, "naïve", "naïve"),
        (ColumnType.INTEGER, 2**63 - 1, 2**63 - 1),
        (ColumnType.INTEGER, -(2**63), -(2**63)),
        (ColumnType.NUMBER, 0.25, 0.25),
        (ColumnType.NUMBER, 3, 3.0),
        (ColumnType.BOOLEAN, False, False),
        (ColumnType.TIMESTAMP, datetime.datetime(2024, 5, 1, 12, tzinfo=UTC), "2024-05-01T12:00:00Z"),
        (
            ColumnType.TIMESTAMP,
            datetime.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            "2024-05-01T12:00:00.250000+05:30",
        ),
        (
            ColumnType.TIMESTAMP,
            datetime.datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=8))),
            "1999-12-31T23:59:59-08:00",
        ),
        (ColumnType.DATE, datetime.date(2024, 2, 29), "2024-02-29"),
        (
            ColumnType.UUID,
            uuid.UUID("67E55044-10B1-426F-9247-BB680E5FE0C8"),
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
        ),
        (ColumnType.JSON, {"tags": ["a", "é"], "n": 1.5}, '{"tags":["a","é"],"n":1.5}'),
        (ColumnType.JSON, [1, "two", None, True], '[1,"two",null,true]'),
        (ColumnType.JSON, "just text", '"just text"'),
        (ColumnType.JSON, Json(None), "null"),
        (ColumnType.JSON, Json.text('{"kept": "as is"}'), '{"kept": "as is"}'),
        (ColumnType.FLOAT_VECTOR, [1.0, -2.5, 3], [1.0, -2.5, 3.0]),
        (ColumnType.FLOAT_VECTOR, (0.5,), [0.5]),
        (ColumnType.FLOAT_VECTOR, [], []),
    ],
)
def test_every_type_converts_to_its_wit_case(ty, value, expected):
    converted = to_value(value, col(ty))
    assert converted == Value(ty, expected)
    assert type(converted.payload) is type(expected)


def test_none_is_null_only_in_nullable_columns():
    for ty in ColumnType:
        assert to_value(None, col(ty, nullable=True)) is NULL
        with pytest.raises(RowError, match=r"is None, but the column is required"):
            to_value(None, col(ty))


def test_naive_datetime_is_refused_with_a_fix():
    with pytest.raises(RowError, match=r"naive datetime \(no tzinfo\).*timezone\.utc"):
        to_value(datetime.datetime(2024, 5, 1), col(ColumnType.TIMESTAMP))


def test_offset_with_seconds_is_refused():
    odd = timezone(timedelta(hours=1, seconds=30))
    with pytest.raises(RowError, match=r"RFC 3339 cannot express"):
        to_value(datetime.datetime(2024, 5, 1, tzinfo=odd), col(ColumnType.TIMESTAMP))


@pytest.mark.parametrize(
    "ty, value, message",
    [
        (ColumnType.TEXT, 5, "is a int, expected str"),
        (ColumnType.TEXT, "\ud800", "is not valid Unicode text"),
        (ColumnType.INTEGER, True, "is a bool, expected int"),
        (ColumnType.INTEGER, 1.0, "is a float, expected int"),
        (ColumnType.INTEGER, 2**63, "does not fit a signed 64-bit integer"),
        (ColumnType.NUMBER, "1.5", "is a str, expected float"),
        (ColumnType.NUMBER, False, "is a bool, expected float"),
        (ColumnType.BOOLEAN, 1, "is a int, expected bool"),
        (ColumnType.TIMESTAMP, "2024-05-01T00:00:00Z", "is a str, expected datetime.datetime"),
        (ColumnType.DATE, datetime.datetime(2024, 5, 1, tzinfo=UTC), "is a datetime, expected datetime.date"),
        (ColumnType.UUID, "67e55044-10b1-426f-9247-bb680e5fe0c8", "is a str, expected uuid.UUID"),
        (ColumnType.JSON, {1, 2}, "cannot be serialised as JSON"),
        (ColumnType.JSON, {"x": float("nan")}, "cannot be serialised as JSON"),
        (ColumnType.FLOAT_VECTOR, [1.0, "2"], "item 1 is a str, not a float"),
        (ColumnType.FLOAT_VECTOR, [True], "item 0 is a bool, not a float"),
        (ColumnType.FLOAT_VECTOR, 1.0, "is a float, expected list[float]"),
    ],
)
def test_unfit_values_say_what_was_wrong(ty, value, message):
    with pytest.raises(RowError) as e:
        to_value(value, col(ty))
    assert message in str(e.value)


def test_non_finite_numbers_travel_to_the_host_unchanged():
    # The host refuses them as a contract violation of the record; the SDK does not crash.
    assert math.isnan(to_value(float("nan"), col(ColumnType.NUMBER)).payload)
    assert to_value(float("inf"), col(ColumnType.NUMBER)) == Value(ColumnType.NUMBER, math.inf)
    assert to_value([math.inf], col(ColumnType.FLOAT_VECTOR)).payload == [math.inf]


@hookhost.features(name="pair", cardinality="many")
class Pair:
    label: Annotated[str, "A label."]
    at: datetime.datetime | None


def test_row_values_follow_column_order_and_name_row_and_column():
    contract = hookhost.contract_of(Pair)
    at = datetime.datetime(2024, 5, 1, tzinfo=UTC)
    assert row_values(Pair("a", at), Pair, contract, 0) == [
        Value(ColumnType.TEXT, "a"),
        Value(ColumnType.TIMESTAMP, "2024-05-01T00:00:00Z"),
    ]
    assert row_values(Pair("b", None), Pair, contract, 0)[1] is NULL
    with pytest.raises(RowError) as e:
        row_values(Pair("c", datetime.datetime(2024, 5, 1)), Pair, contract, 2)
    assert str(e.value).startswith("row 2, column 'at': value is a naive datetime")
    with pytest.raises(RowError, match=r"^row 1 is a dict, not a Pair$"):
        row_values({"label": "x", "at": None}, Pair, contract, 1)


class _Str(str):
    pass


class _Int(int):
    pass


@pytest.mark.parametrize(
    "ty, nullable, value",
    [
        (ColumnType.TEXT, False, "ascii"),
        (ColumnType.TEXT, False, "naïve"),
        (ColumnType.TEXT, False, _Str("sub")),
        (ColumnType.TEXT, False, "\ud800"),
        (ColumnType.TEXT, False, 5),
        (ColumnType.TEXT, True, None),
        (ColumnType.TEXT, False, None),
        (ColumnType.INTEGER, False, 7),
        (ColumnType.INTEGER, False, _Int(7)),
        (ColumnType.INTEGER, False, True),
        (ColumnType.INTEGER, False, 2**63),
        (ColumnType.INTEGER, False, -(2**63) - 1),
        (ColumnType.INTEGER, False, 1.0),
        (ColumnType.NUMBER, False, 0.5),
        (ColumnType.NUMBER, False, 3),
        (ColumnType.NUMBER, False, False),
        (ColumnType.NUMBER, True, None),
        (ColumnType.BOOLEAN, False, True),
        (ColumnType.BOOLEAN, False, 1),
        (ColumnType.DATE, False, datetime.date(2024, 2, 29)),
        (ColumnType.FLOAT_VECTOR, False, [1, 2.5]),
    ],
)
def test_a_column_converter_agrees_with_to_value(ty, nullable, value):
    # The converters' inline common cases must accept, convert and refuse exactly as `to_value`.
    column = col(ty, nullable)
    made = {t: (lambda payload, t=t: ("made", t, payload)) for t in ColumnType}
    convert = _column_converter(column, made[ty], "null")
    try:
        expected = to_value(value, column)
    except RowError as e:
        with pytest.raises(RowError) as got:
            convert(value)
        assert str(got.value) == str(e)
        return
    got = convert(value)
    if expected.kind is None:
        assert got == "null"
    else:
        assert got == ("made", ty, expected.payload)
        assert type(got[2]) is type(expected.payload)  # 3 in a number column is sent as 3.0


def test_a_row_converter_builds_values_with_what_it_is_given():
    contract = hookhost.contract_of(Pair)
    at = datetime.datetime(2024, 5, 1, tzinfo=UTC)
    wit = RowConverter(Pair, contract, {t: (lambda p, t=t: (t.name, p)) for t in ColumnType}, "NULL")
    assert wit(Pair("a", at), 0) == [("TEXT", "a"), ("TIMESTAMP", "2024-05-01T00:00:00Z")]
    assert wit(Pair("b", None), 3) == [("TEXT", "b"), "NULL"]
    with pytest.raises(RowError, match=r"^row 4, column 'label': value is a int, expected str$"):
        wit(Pair(5, None), 4)


@hookhost.features(name="single", cardinality="one")
class Single:
    n: int


def test_a_row_of_one_column_is_a_list_of_one_value():
    # `operator.attrgetter` of one name answers the value itself, not a tuple of one.
    assert row_values(Single(3), Single, hookhost.contract_of(Single), 0) == [Value(ColumnType.INTEGER, 3)]
