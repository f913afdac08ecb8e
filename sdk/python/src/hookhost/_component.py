"""The adapter between componentize-py's generated bindings and :class:`Runtime`.

componentize-py (0.25) generates, for the ``hook`` world of ``hookhost:hook@0.2.0``, a package
``wit_world``: the protocol class ``wit_world.WitWorld`` (the exports ``contract``,
``configure`` and ``process``) that the component's app module must define a subclass of, named
``WitWorld``; the WIT types in ``wit_world.imports.types`` (``Contract``, ``Column``,
``ColumnType``, ``Cardinality``, ``Value_Text`` ... ``Value_FloatVector``, ``Outcome_Passed``,
``Outcome_Rejected``, ``Outcome_Errored``, ``GuestError``, ``RecordOutcome``); and the import
``wit_world.imports.host.begin_record``. A ``result<_, string>`` export reports its error by
raising ``componentize_py_types.Err(message)``.

This module only converts between those types and the SDK's own; it is imported only inside
the component (``python -m hookhost build`` writes the entry module that imports it), so the
rest of the SDK runs on plain CPython. Importing it resolves the module's one ``@hookhost.hook``
and converts its contract, so a missing hook fails the build.
"""

from __future__ import annotations

from componentize_py_types import Err

import wit_world
from wit_world.imports import host, types

from ._contract import Cardinality, ColumnType, Contract
from ._hook import ConfigError, Runtime, registered_hook
from ._outcome import Errored, Passed, RecordOutcome, Rejected
from ._record import Record
from ._values import Value

__all__ = ["WitWorld"]

_COLUMN_TYPES = {ty: types.ColumnType[ty.name] for ty in ColumnType}
_CARDINALITIES = {c: types.Cardinality[c.name] for c in Cardinality}
_VALUES = {
    ColumnType.TEXT: types.Value_Text,
    ColumnType.INTEGER: types.Value_Integer,
    ColumnType.NUMBER: types.Value_Number,
    ColumnType.BOOLEAN: types.Value_Boolean,
    ColumnType.TIMESTAMP: types.Value_Timestamp,
    ColumnType.DATE: types.Value_Date,
    ColumnType.UUID: types.Value_Uuid,
    ColumnType.JSON: types.Value_Json,
    ColumnType.FLOAT_VECTOR: types.Value_FloatVector,
}


def wit_contract(contract: Contract) -> types.Contract:
    return types.Contract(
        contract.feature,
        _CARDINALITIES[contract.cardinality],
        [
            types.Column(c.name, _COLUMN_TYPES[c.ty], c.nullable, c.description)
            for c in contract.columns
        ],
    )


def wit_value(value: Value) -> types.Value:
    if value.kind is None:
        return types.Value_Null()
    return _VALUES[value.kind](value.payload)


def wit_outcome(outcome: RecordOutcome) -> types.RecordOutcome:
    o = outcome.outcome
    if isinstance(o, Passed):
        wit = types.Outcome_Passed([[wit_value(v) for v in row] for row in o.rows])
    elif isinstance(o, Rejected):
        wit = types.Outcome_Rejected(o.reason)
    else:
        assert isinstance(o, Errored)
        wit = types.Outcome_Errored(types.GuestError(o.message, o.retryable))
    return types.RecordOutcome(outcome.index, wit)


def _begin_record(index: int) -> None:
    # Looked up at each call, so a test can replace `host.begin_record`.
    host.begin_record(index)


_RUNTIME = Runtime(registered_hook())
_CONTRACT = wit_contract(_RUNTIME.contract())


class WitWorld(wit_world.WitWorld):
    """The component's exports, served by the module's one ``@hookhost.hook``."""

    def contract(self) -> types.Contract:
        return _CONTRACT

    def configure(self, config: str) -> None:
        try:
            _RUNTIME.configure(config)
        except ConfigError as e:
            raise Err(str(e)) from None

    def process(self, records: list[types.Record]) -> list[types.RecordOutcome]:
        ours = [
            Record(r.id, r.metadata, size_hint_mb=r.size_hint_mb, files_dir=r.files_dir)
            for r in records
        ]
        return [wit_outcome(o) for o in _RUNTIME.process(ours, _begin_record)]
