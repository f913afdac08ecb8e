"""Contract derivation from row classes, and the definition errors raised at decoration time."""

from __future__ import annotations

import dataclasses
import datetime
import typing
import uuid
from typing import Annotated, List, Optional, Union

import pytest

import hookhost
from hookhost import Cardinality, Column, ColumnType, DefinitionError, Json, contract_of


@hookhost.features(name="sample", cardinality="many")
class Sample:
    """Every supported column type, required and nullable."""

    name: Annotated[str, "A name."]
    count: int
    ratio: float
    flag: bool
    seen_at: datetime.datetime
    day: datetime.date
    key: uuid.UUID
    extra: Json
    embedding: list[float]
    maybe_name: Optional[str]
    maybe_count: int | None
    maybe_ratio: Union[float, None]
    maybe_json: Annotated[Json | None, "Free-form details."]
    maybe_embedding: Optional[Annotated[List[float], "An embedding, when there is one."]]
    class_: Annotated[str | None, hookhost.rename("class")]


def test_every_column_type_is_derived_in_field_order():
    contract = contract_of(Sample)
    assert contract.feature == "sample"
    assert contract.cardinality is Cardinality.MANY
    assert [(c.name, c.ty, c.nullable) for c in contract.columns] == [
        ("name", ColumnType.TEXT, False),
        ("count", ColumnType.INTEGER, False),
        ("ratio", ColumnType.NUMBER, False),
        ("flag", ColumnType.BOOLEAN, False),
        ("seen_at", ColumnType.TIMESTAMP, False),
        ("day", ColumnType.DATE, False),
        ("key", ColumnType.UUID, False),
        ("extra", ColumnType.JSON, False),
        ("embedding", ColumnType.FLOAT_VECTOR, False),
        ("maybe_name", ColumnType.TEXT, True),
        ("maybe_count", ColumnType.INTEGER, True),
        ("maybe_ratio", ColumnType.NUMBER, True),
        ("maybe_json", ColumnType.JSON, True),
        ("maybe_embedding", ColumnType.FLOAT_VECTOR, True),
        ("class", ColumnType.TEXT, True),
    ]


def test_descriptions_come_from_annotated_only():
    described = {c.name: c.description for c in contract_of(Sample).columns if c.description}
    assert described == {
        "name": "A name.",
        "maybe_json": "Free-form details.",
        "maybe_embedding": "An embedding, when there is one.",
    }
    # The class docstring is not a column description.
    assert all("Every supported" not in (c.description or "") for c in contract_of(Sample).columns)


def test_wit_type_names_are_the_enum_values():
    assert [t.value for t in ColumnType] == [
        "text", "integer", "number", "boolean", "timestamp", "date", "uuid", "json", "float-vector",
    ]
    assert [c.value for c in Cardinality] == ["one", "many"]


def test_features_makes_a_dataclass_and_keeps_an_existing_one():
    @hookhost.features(name="plain", cardinality="one")
    class Plain:
        n: int

    @hookhost.features(name="already", cardinality="one")
    @dataclasses.dataclass(frozen=True)
    class Already:
        n: int

    assert dataclasses.is_dataclass(Plain) and Plain(3).n == 3
    assert contract_of(Already) == hookhost.Contract(
        "already", Cardinality.ONE, (Column("n", ColumnType.INTEGER, False, None),)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        Already(1).n = 2


def test_string_annotations_are_resolved():
    # This module uses `from __future__ import annotations`: every annotation above is a string.
    assert isinstance(Sample.__annotations__["count"], str)
    assert contract_of(Sample).columns[1].ty is ColumnType.INTEGER


def _define(annotations: dict, *, name="bad_rows", cardinality="one", cls_name="Bad"):
    cls = type(cls_name, (), {"__annotations__": annotations, "__module__": __name__})
    return hookhost.features(name=name, cardinality=cardinality)(cls)


@pytest.mark.parametrize(
    "annotation",
    [
        dict, list[int], list, bytes, tuple[float], typing.Any, Union[int, str],
        Optional[Union[int, str]], datetime.time, Optional[Optional[int]] | list[str],
        "NoSuchType",
    ],
)
def test_unsupported_annotation_names_class_and_field(annotation):
    with pytest.raises(DefinitionError) as e:
        _define({"ok": int, "size": annotation})
    assert str(e.value).startswith("Bad.size: ") or "Bad: cannot resolve" in str(e.value)
    assert "NoSuchType" in str(e.value) or "unsupported annotation" in str(e.value)


def test_int_subclasses_are_not_silently_accepted():
    class Small(int):
        pass

    with pytest.raises(DefinitionError, match=r"^Bad\.n: unsupported annotation \S*Small; supported: str, int"):
        _define({"n": Small})


@pytest.mark.parametrize(
    "column, problem",
    [
        ("Upper", "must match [a-z][a-z0-9_]*"),
        ("_private", "must match"),
        ("9lives", "must match"),
        ("dash-ed", "must match"),
        ("é", "must match"),
        ("x" * 65, "is 65 bytes, more than 64"),
    ],
)
def test_malformed_column_name_names_the_field(column, problem):
    with pytest.raises(DefinitionError) as e:
        _define({"field": Annotated[int, hookhost.rename(column)]})
    assert str(e.value).startswith("Bad.field: column name")
    assert problem in str(e.value)


def test_field_names_are_column_names_and_checked_too():
    with pytest.raises(DefinitionError, match=r"^Bad\.Count: column name 'Count' must match"):
        _define({"Count": int})
    assert len(_define({"x" * 64: int}).__hookhost_contract__.columns[0].name) == 64


def test_duplicate_column_name_names_both_fields():
    with pytest.raises(DefinitionError) as e:
        _define({"size": int, "length": Annotated[int, hookhost.rename("size")]})
    assert str(e.value) == "Bad.length: duplicate column name 'size' (also field 'size')"


@pytest.mark.parametrize(
    "name, problem",
    [
        ("Text", "must match"),
        ("", "must match"),
        ("text-stats", "must match"),
        (None, "must match"),
        ("f" * 41, "is 41 bytes, more than 40"),
    ],
)
def test_malformed_feature_name_names_the_class(name, problem):
    with pytest.raises(DefinitionError) as e:
        _define({"n": int}, name=name)
    assert str(e.value).startswith(f"Bad: feature name {name!r}")
    assert problem in str(e.value)
    assert _define({"n": int}, name="f" * 40).__hookhost_contract__.feature == "f" * 40


@pytest.mark.parametrize("cardinality", ["One", "several", "", None])
def test_bad_cardinality_names_the_class(cardinality):
    with pytest.raises(DefinitionError) as e:
        _define({"n": int}, cardinality=cardinality)
    assert str(e.value) == f'Bad: cardinality {cardinality!r} must be "one" or "many"'


def test_no_columns():
    with pytest.raises(DefinitionError, match=r"^Empty: a feature row needs at least one column"):
        _define({}, cls_name="Empty")


def test_two_descriptions_and_unknown_metadata_are_refused():
    with pytest.raises(DefinitionError, match=r"^Bad\.n: Annotated has more than one description"):
        _define({"n": Annotated[int, "one", "two"]})
    with pytest.raises(DefinitionError, match=r"^Bad\.n: unsupported Annotated metadata 3"):
        _define({"n": Annotated[int, 3]})
    with pytest.raises(DefinitionError, match=r"^Bad\.n: the description is empty"):
        _define({"n": Annotated[int, "  "]})


def test_contract_of_an_undecorated_class_says_how_to_fix_it():
    class Row:
        n: int

    with pytest.raises(DefinitionError, match=r"decorate it with @hookhost\.features"):
        contract_of(Row)
