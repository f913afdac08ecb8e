"""The hook decorator and the runtime behind the exports: outcome identity, per-record
announcements, isolation of a raising record, typed config, and hook definition errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pytest

import hookhost
from hookhost import (
    ColumnType,
    ConfigError,
    DefinitionError,
    Errored,
    GuestError,
    Passed,
    Record,
    RecordOutcome,
    Reject,
    Rejected,
    Runtime,
    Value,
    hook_of,
)
from hookhost._hook import registered_hook


@hookhost.features(name="echo", cardinality="one")
class Echo:
    id: Annotated[str, "The record's id."]
    n: int | None


class FakeHost:
    """Stands in for the generated `wit_world.imports.host` module: records the announcements."""

    def __init__(self) -> None:
        self.announced: list[int] = []
        self.processing: list[str] = []

    def begin_record(self, index: int) -> None:
        self.announced.append(index)


def run(function, records, config: str | None = None, host: FakeHost | None = None):
    runtime = Runtime(hook_of(function))
    if config is not None:
        runtime.configure(config)
    host = host or FakeHost()
    return runtime.process(records, host.begin_record), host


def test_every_outcome_names_its_record_and_each_record_is_announced_once_in_order():
    host = FakeHost()

    @hookhost.hook
    def echo(record: Record) -> list[Echo]:
        # The announcement for this record came before its work started.
        assert host.announced[-1] == int(record.id[1:])
        host.processing.append(record.id)
        return [Echo(record.id, record.metadata().get("n"))]

    records = [Record(f"r{i}", f'{{"n": {i}}}') for i in range(5)]
    outcomes, _ = run(echo, records, host=host)
    assert host.announced == [0, 1, 2, 3, 4]
    assert host.processing == ["r0", "r1", "r2", "r3", "r4"]
    assert outcomes == [
        RecordOutcome(i, Passed([[Value(ColumnType.TEXT, f"r{i}"), Value(ColumnType.INTEGER, i)]]))
        for i in range(5)
    ]


def test_an_empty_batch_announces_nothing():
    @hookhost.hook
    def echo(record: Record) -> list[Echo]:
        return []

    outcomes, host = run(echo, [])
    assert outcomes == [] and host.announced == []


def test_issue_13_a_raising_record_errors_alone():
    """Issue 13: an exception in one record must not cost its batch-mates their outcomes."""

    @hookhost.hook
    def fragile(record: Record) -> list[Echo]:
        if record.id == "bad":
            {}["missing"]
        return [Echo(record.id, None)]

    outcomes, host = run(fragile, [Record("a"), Record("bad"), Record("c")])
    assert host.announced == [0, 1, 2]
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert outcomes[0].outcome == Passed([[Value(ColumnType.TEXT, "a"), Value(None)]])
    assert outcomes[2].outcome == Passed([[Value(ColumnType.TEXT, "c"), Value(None)]])
    error = outcomes[1].outcome
    assert isinstance(error, Errored) and error.retryable is False
    assert error.message.startswith("KeyError: 'missing' (at test_hook.py:")
    assert "\n" not in error.message and "Traceback" not in error.message


def test_multiline_messages_become_one_line():
    @hookhost.hook
    def noisy(record: Record) -> list[Echo]:
        raise RuntimeError("first line\n  second line")

    [outcome], _ = run(noisy, [Record("a")])
    assert outcome.outcome.message.startswith("RuntimeError: first line second line (at ")


def test_reject_and_guest_error_raised_or_returned():
    @hookhost.hook
    def picky(record: Record) -> list[Echo] | Reject | GuestError:
        kind = record.metadata()["kind"]
        if kind == "raise-reject":
            raise Reject("too short")
        if kind == "return-reject":
            return Reject("too long")
        if kind == "retryable":
            raise GuestError("upstream busy", retryable=True)
        if kind == "return-error":
            return GuestError("bad upstream answer")
        return [Echo(record.id, 1)]

    kinds = ["raise-reject", "return-reject", "retryable", "return-error", "ok"]
    outcomes, _ = run(picky, [Record(k, f'{{"kind": "{k}"}}') for k in kinds])
    assert [o.outcome for o in outcomes[:4]] == [
        Rejected("too short"),
        Rejected("too long"),
        Errored("upstream busy", True),
        Errored("bad upstream answer", False),
    ]
    assert isinstance(outcomes[4].outcome, Passed)


def test_metadata_that_is_not_json_rejects_the_record():
    @hookhost.hook
    def meta(record: Record) -> list[Echo]:
        record.metadata()
        return [Echo(record.id, None)]

    outcomes, _ = run(meta, [Record("a", "{not json"), Record("b", '{"x": NaN}'), Record("c", "{}")])
    assert outcomes[0].outcome.reason.startswith("metadata: not valid JSON: Expecting property name")
    assert outcomes[1].outcome == Rejected("metadata: not valid JSON: NaN is not JSON")
    assert isinstance(outcomes[2].outcome, Passed)


def test_bad_rows_error_their_record_naming_row_and_column():
    @hookhost.hook
    def sloppy(record: Record) -> list[Echo]:
        if record.id == "not-a-list":
            return Echo("x", 1)  # type: ignore[return-value]
        if record.id == "wrong-type":
            return [Echo("x", "1")]  # type: ignore[arg-type]
        return [Echo(record.id, 2**64)]

    outcomes, _ = run(sloppy, [Record("not-a-list"), Record("wrong-type"), Record("too-big")])
    assert [o.outcome for o in outcomes] == [
        Errored("the hook returned a Echo, not a list of Echo rows"),
        Errored("row 0, column 'n': value is a str, expected int"),
        Errored(f"row 0, column 'n': value {2**64} does not fit a signed 64-bit integer"),
    ]


def test_outcomes_and_values_are_built_by_the_runtimes_outcomes():
    # The component builds WIT types directly this way; every kind of outcome goes through it.
    class Tagged(hookhost._hook.Outcomes):
        values = {ty: (lambda payload, ty=ty: (ty.name, payload)) for ty in ColumnType}
        null = "null"

        def passed(self, index, rows):
            return ("passed", index, rows)

        def rejected(self, index, reason):
            return ("rejected", index, reason)

        def errored(self, index, message, retryable=False):
            return ("errored", index, message, retryable)

    @hookhost.hook
    def mixed(record: Record) -> list[Echo]:
        if record.id == "no":
            raise Reject("not this one")
        if record.id == "busy":
            raise GuestError("busy", retryable=True)
        if record.id == "bad":
            return [Echo(record.id, "1")]  # type: ignore[arg-type]
        return [Echo(record.id, None), Echo(record.id, 2)]

    runtime = Runtime(hook_of(mixed), Tagged())
    records = [Record(i) for i in ["ok", "no", "busy", "bad"]]
    assert runtime.process(records, lambda i: None) == [
        ("passed", 0, [[("TEXT", "ok"), "null"], [("TEXT", "ok"), ("INTEGER", 2)]]),
        ("rejected", 1, "not this one"),
        ("errored", 2, "busy", True),
        ("errored", 3, "row 0, column 'n': value is a str, expected int", False),
    ]


def test_memory_error_is_not_swallowed():
    # It must trap the call, so the host sees the denied grow and retries with more memory.
    @hookhost.hook
    def hungry(record: Record) -> list[Echo]:
        raise MemoryError

    with pytest.raises(MemoryError):
        run(hungry, [Record("a")])


@dataclass
class Limits:
    max: int
    unit: Literal["bytes", "chars"] = "bytes"


@dataclass
class Config:
    required: list[str]
    limits: Limits | None = None
    labels: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    extra: Any = None

    def __post_init__(self) -> None:
        if not self.required:
            raise ValueError("required must not be empty")


@hookhost.features(name="checked", cardinality="one")
class Checked:
    checked: int


def test_config_is_parsed_into_the_dataclass_before_records():
    seen = []

    @hookhost.hook
    def require(record: Record, config: Config) -> list[Checked]:
        seen.append(config)
        return [Checked(len(config.required))]

    assert hook_of(require).config_class is Config
    outcomes, _ = run(
        require,
        [Record("a")],
        config='{"required": ["title", "year"], "limits": {"max": 3}, "labels": {"x": 1}}',
    )
    assert seen == [Config(["title", "year"], Limits(3, "bytes"), {"x": 1.0}, None, None)]
    assert outcomes[0].outcome == Passed([[Value(ColumnType.INTEGER, 2)]])


@pytest.mark.parametrize(
    "config, message",
    [
        ('{"required": 5}', "invalid config: required: expected an array, got an integer"),
        ('{"required": ["a", 2]}', "invalid config: required[1]: expected a string, got an integer"),
        ("{}", "invalid config: required: missing field"),
        (
            '{"required": ["a"], "requried": []}',
            "invalid config: requried: unknown field (known fields: required, limits, labels, note, extra)",
        ),
        ('{"required": ["a"], "limits": {"max": "3"}}', "invalid config: limits.max: expected an integer, got a string"),
        ('{"required": ["a"], "limits": {"max": 3, "unit": "km"}}', 'invalid config: limits.unit: expected one of "bytes", "chars", got \'km\''),
        ('{"required": ["a"], "labels": {"x": true}}', "invalid config: labels.x: expected a number, got a boolean"),
        ('{"required": []}', "invalid config: required must not be empty"),
        ("[1]", "invalid config: expected an object (Config), got an array"),
        ("{", "invalid config: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ],
)
def test_config_errors_name_the_bad_field(config, message):
    @hookhost.hook
    def require(record: Record, config: Config) -> list[Checked]:
        return [Checked(0)]

    with pytest.raises(ConfigError) as e:
        Runtime(hook_of(require)).configure(config)
    assert str(e.value) == message


def test_a_hook_without_config_accepts_any_json_but_not_broken_json():
    @hookhost.hook
    def plain(record: Record) -> list[Checked]:
        return [Checked(0)]

    runtime = Runtime(hook_of(plain))
    for config in ["{}", "null", '{"anything": [1, 2]}']:
        runtime.configure(config)
    with pytest.raises(ConfigError, match="not valid JSON"):
        runtime.configure("{")


def test_process_before_configure_uses_empty_config_or_errors_every_record():
    @hookhost.hook
    def require(record: Record, config: Config) -> list[Checked]:
        return [Checked(0)]

    outcomes, host = run(require, [Record("a"), Record("b")])
    assert host.announced == [0, 1]
    assert outcomes == [
        RecordOutcome(i, Errored("hook is not configured: invalid config: required: missing field"))
        for i in range(2)
    ]


def test_the_registry_holds_the_module_hook():
    with pytest.raises(DefinitionError, match="exactly one @hookhost.hook function, found 0: none"):
        registered_hook()

    @hookhost.hook
    def one(record: Record) -> list[Checked]:
        return []

    assert registered_hook().function is one

    @hookhost.hook
    def two(record: Record) -> list[Checked]:
        return []

    with pytest.raises(DefinitionError, match=r"found 2: .*one, .*two"):
        registered_hook()


class NotARow:
    n: int


@dataclass
class BadConfig:
    when: set[int]


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f(record: Record): return []", "has no return annotation"),
        ("def f(record: Record) -> Checked: return []", "is not a list"),
        ("def f(record: Record) -> list[Checked] | None: return []", "return annotation"),
        ("def f(record: Record) -> list[int]: return []", "the row class is not decorated with @hookhost.features"),
        ("def f(record: Record) -> list[NotARow]: return []", "the row class is not decorated"),
        ("def f(record: Record) -> list: return []", "is not a list"),
        ("def f() -> list[Checked]: return []", "takes (record) or (record, config), not ()"),
        ("def f(a, b, c) -> list[Checked]: return []", "takes (record) or (record, config), not (a, b, c)"),
        ("def f(record, config: dict) -> list[Checked]: return []", "parameter 'config' must be annotated with a dataclass"),
        ("def f(record, config) -> list[Checked]: return []", "parameter 'config' must be annotated with a dataclass"),
        ("def f(record, config: BadConfig) -> list[Checked]: return []", "config BadConfig.when: unsupported config annotation set[int]"),
    ],
)
def test_hook_definition_errors_name_the_function(source, message):
    namespace = {"Record": Record, "Checked": Checked, "NotARow": NotARow, "BadConfig": BadConfig}
    exec(source, namespace)
    with pytest.raises(DefinitionError) as e:
        hookhost.hook(namespace["f"])
    assert str(e.value).startswith("hook function 'f': ")
    assert message in str(e.value)


def test_the_decorated_function_is_returned_unchanged():
    def f(record: Record) -> list[Checked]:
        return [Checked(7)]

    assert hookhost.hook(f) is f
    assert f(Record("a")) == [Checked(7)]
    assert dataclasses.is_dataclass(Checked)
