"""The ``@hook`` decorator and the runtime behind the WIT exports.

``Runtime`` is everything the component does, in plain Python: the contract, ``configure`` and
``process`` (with outcome identity and per-record ``begin_record`` calls). The adapter in
``_component.py`` only converts its answers to the generated binding types, so all of this is
tested on plain CPython without componentize-py.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
import traceback
import types
import typing
from typing import Any, Callable, Mapping, Sequence

from ._contract import ColumnType, Contract, DefinitionError, contract_of
from ._outcome import Errored, GuestError, Passed, RecordOutcome, Reject, Rejected
from ._parse import ParseError, load_json, parse_value
from ._record import Record
from ._values import NULL, RowConverter, RowError

__all__ = ["ConfigError", "Hook", "Outcomes", "Runtime", "hook", "registered_hook"]

#: Longest message of an ``errored`` outcome made from an unexpected exception, in characters.
MAX_ERROR_MESSAGE_CHARS = 1000

_REGISTERED: list[Hook] = []


class ConfigError(ValueError):
    """The release config could not configure the hook; ``configure`` fails the run with it."""


@dataclasses.dataclass(frozen=True)
class Hook:
    """A hook function with what was derived from it: the row class, contract and config class."""

    function: Callable[..., Any]
    row_class: type
    contract: Contract
    config_class: type | None

    @property
    def name(self) -> str:
        return self.function.__qualname__


def _unwrap_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _row_class_of(annotation: Any, where: str) -> type:
    """The ``Row`` of a return annotation ``list[Row]`` (optionally ``| Reject | GuestError``)."""
    hint = (
        "its return annotation must be list[Row], Row a @hookhost.features class "
        "(optionally list[Row] | hookhost.Reject | hookhost.GuestError)"
    )
    annotation = _unwrap_annotated(annotation)
    if annotation is inspect.Signature.empty:
        raise DefinitionError(f"{where}: has no return annotation; {hint}")
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        lists = [a for a in typing.get_args(annotation) if a not in (Reject, GuestError)]
        if len(lists) != 1:
            raise DefinitionError(f"{where}: return annotation {annotation!r}: {hint}")
        annotation = _unwrap_annotated(lists[0])
        origin = typing.get_origin(annotation)
    if origin is not list or len(typing.get_args(annotation)) != 1:
        raise DefinitionError(f"{where}: return annotation {annotation!r} is not a list; {hint}")
    (row_class,) = typing.get_args(annotation)
    if not isinstance(row_class, type) or "__hookhost_contract__" not in row_class.__dict__:
        raise DefinitionError(
            f"{where}: return annotation list[{getattr(row_class, '__qualname__', row_class)!r}]: "
            "the row class is not decorated with @hookhost.features(name=..., cardinality=...)"
        )
    return row_class


def _check_parseable(tp: Any, where: str, seen: set[type]) -> None:
    """Refuses, at decoration time, a config annotation the config parser cannot fill."""
    tp = _unwrap_annotated(tp)
    origin = typing.get_origin(tp)
    if tp in (str, int, float, bool, type(None), Any, object, list, dict):
        return
    if origin is typing.Literal:
        return
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise DefinitionError(f"{where}: unsupported annotation {tp!r} (only X | None unions)")
        return _check_parseable(args[0], where, seen)
    if origin is list:
        return _check_parseable(typing.get_args(tp)[0], f"{where}[]", seen)
    if origin is dict:
        key, item = typing.get_args(tp)
        if key is not str:
            raise DefinitionError(f"{where}: dict keys must be str, not {key!r}")
        return _check_parseable(item, f"{where}[]", seen)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp in seen:
            return
        seen.add(tp)
        try:
            hints = typing.get_type_hints(tp, include_extras=True)
        except Exception as e:
            raise DefinitionError(f"{tp.__qualname__}: cannot resolve annotations: {e}") from None
        for field in dataclasses.fields(tp):
            _check_parseable(hints[field.name], f"{tp.__qualname__}.{field.name}", seen)
        return
    raise DefinitionError(
        f"{where}: unsupported config annotation {tp!r} (use str, int, float, bool, list[...], "
        "dict[str, ...], Literal[...], X | None, Any or a dataclass)"
    )


def _derive(function: Callable[..., Any]) -> Hook:
    where = f"hook function {getattr(function, '__qualname__', function)!r}"
    if not callable(function):
        raise DefinitionError(f"@hookhost.hook decorates a function, not {function!r}")
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as e:
        raise DefinitionError(f"{where}: cannot resolve its annotations: {e}") from None
    parameters = list(inspect.signature(function).parameters.values())
    positional = [
        p for p in parameters
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if not 1 <= len(positional) <= 2 or any(p.kind is p.KEYWORD_ONLY for p in positional):
        raise DefinitionError(
            f"{where}: takes (record) or (record, config), "
            f"not ({', '.join(p.name for p in parameters)})"
        )
    row_class = _row_class_of(hints.get("return", inspect.Signature.empty), where)
    config_class = None
    if len(positional) == 2:
        config_name = positional[1].name
        config_class = _unwrap_annotated(hints.get(config_name, inspect.Signature.empty))
        if not (isinstance(config_class, type) and dataclasses.is_dataclass(config_class)):
            raise DefinitionError(
                f"{where}: parameter {config_name!r} must be annotated with a dataclass "
                f"(the config), not {config_class!r}"
            )
        try:
            _check_parseable(config_class, config_class.__qualname__, set())
        except DefinitionError as e:
            raise DefinitionError(f"{where}: config {e}") from None
    return Hook(function, row_class, contract_of(row_class), config_class)


def hook(function: Callable[..., Any]) -> Callable[..., Any]:
    """Declares the component's hook: a function from a :class:`Record` to rows.

    Its signature says everything: ``def f(record: Record) -> list[Row]`` or
    ``def f(record: Record, config: Config) -> list[Row]``, where ``Row`` is a
    :func:`features` class (its contract is the hook's) and ``Config`` a dataclass parsed from
    the release config. The function returns the record's rows, or raises (or returns)
    :class:`Reject` or :class:`GuestError`. A signature that does not fit raises
    :class:`DefinitionError` here, when the module is imported (so at build time).

    The function is returned unchanged, so tests call it directly. A module has one hook.
    """
    derived = _derive(function)
    _REGISTERED.append(derived)
    try:
        function.__hookhost_hook__ = derived
    except (AttributeError, TypeError):
        pass
    return function


def registered_hook() -> Hook:
    """The one function decorated with :func:`hook` (the component's hook)."""
    if len(_REGISTERED) != 1:
        names = ", ".join(h.name for h in _REGISTERED) or "none"
        raise DefinitionError(
            f"a hook component needs exactly one @hookhost.hook function, found {len(_REGISTERED)}: "
            f"{names}"
        )
    return _REGISTERED[0]


def hook_of(function: Any) -> Hook:
    """The :class:`Hook` derived from a function decorated with :func:`hook`."""
    derived = getattr(function, "__hookhost_hook__", None)
    if isinstance(derived, Hook):
        return derived
    return _derive(function)


def _one_line(error: BaseException) -> str:
    """``Type: message (at file:line)``: what an operator needs, on one line, capped."""
    message = " ".join(str(error).split())
    text = f"{type(error).__qualname__}: {message}" if message else type(error).__qualname__
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {os.path.basename(last.filename)}:{last.lineno})"
    if len(text) > MAX_ERROR_MESSAGE_CHARS:
        text = text[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"
    return text


class Outcomes:
    """How :class:`Runtime` builds each record's outcome: by default the SDK's own types.

    The component subclasses it to build the generated WIT types directly (``_component.py``),
    so a record's outcome and its rows' values are made once, not made and then converted.
    ``values`` maps each column type to what builds a value from its payload, ``null`` is the
    null value (see :class:`~hookhost._values.RowConverter`).
    """

    values: Mapping[ColumnType, Callable[[Any], Any]] | None = None
    null: Any = NULL

    def passed(self, index: int, rows: list[list[Any]]) -> Any:
        return RecordOutcome(index, Passed(rows))

    def rejected(self, index: int, reason: str) -> Any:
        return RecordOutcome(index, Rejected(reason))

    def errored(self, index: int, message: str, retryable: bool = False) -> Any:
        return RecordOutcome(index, Errored(message, retryable))


class Runtime:
    """One sandbox's hook: the contract, its configuration and the processing of batches."""

    def __init__(self, hook: Hook, outcomes: Outcomes | None = None) -> None:
        self.hook = hook
        self._config: Any = None
        self._configured = False
        self._outcomes = outcomes if outcomes is not None else Outcomes()
        self._rows = RowConverter(
            hook.row_class, hook.contract, self._outcomes.values, self._outcomes.null
        )

    def contract(self) -> Contract:
        """The hook's contract, derived from its row class."""
        return self.hook.contract

    def configure(self, config_json: str) -> None:
        """Parses the release config; :class:`ConfigError` (``invalid config: ...``) if it does not fit."""
        try:
            value = load_json(config_json)
        except ValueError as e:
            raise ConfigError(f"invalid config: not valid JSON: {e}") from None
        if self.hook.config_class is None:
            config = None  # a hook without config accepts any JSON and ignores it
        else:
            try:
                config = parse_value(self.hook.config_class, value)
            except ParseError as e:
                raise ConfigError(f"invalid config: {e}") from None
        self._config = config
        self._configured = True

    def process(
        self, records: Sequence[Record], begin_record: Callable[[int], None]
    ) -> list[Any]:
        """One outcome per record, each naming its index; ``begin_record(i)`` before record ``i``.

        Outcomes are :class:`RecordOutcome` values unless the runtime was given other
        :class:`Outcomes`.

        An exception from one record becomes that record's ``errored`` outcome, so the others
        keep theirs. ``MemoryError`` is the exception: it propagates (the call traps), so the
        host sees the denied memory grow and reruns the records with a larger cap.
        """
        outcomes = self._outcomes
        if not self._configured:
            try:
                self.configure("{}")
            except ConfigError as e:
                message = f"hook is not configured: {e}"
                results = []
                for index in range(len(records)):
                    begin_record(index)
                    results.append(outcomes.errored(index, message))
                return results
        results = []
        for index, record in enumerate(records):
            begin_record(index)
            results.append(self._process_one(index, record))
        return results

    def _process_one(self, index: int, record: Record) -> Any:
        hook = self.hook
        outcomes = self._outcomes
        try:
            if hook.config_class is None:
                result = hook.function(record)
            else:
                result = hook.function(record, self._config)
            if isinstance(result, Reject):
                raise result
            if isinstance(result, GuestError):
                raise result
            if not isinstance(result, list):
                raise GuestError(
                    f"the hook returned a {type(result).__qualname__}, "
                    f"not a list of {hook.row_class.__qualname__} rows"
                )
            rows = self._rows
            return outcomes.passed(index, [rows(row, i) for i, row in enumerate(result)])
        except Reject as rejection:
            return outcomes.rejected(index, rejection.reason)
        except GuestError as error:
            return outcomes.errored(index, error.message, error.retryable)
        except RowError as error:
            return outcomes.errored(index, str(error))
        except MemoryError:
            raise
        except Exception as error:
            print(f"hookhost: record {record.id} raised:", file=sys.stderr)
            traceback.print_exception(error, file=sys.stderr)
            return outcomes.errored(index, _one_line(error))
