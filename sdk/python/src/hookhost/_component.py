"""The adapter between componentize-py's generated bindings and :class:`Runtime`.

componentize-py (0.25) generates, for the ``hook`` world of ``hookhost:hook@0.2.0``, a package
``wit_world``: the protocol class ``wit_world.WitWorld`` (the exports ``contract``,
``configure`` and ``process``) that the component's app module must define a subclass of, named
``WitWorld``; the WIT types in ``wit_world.imports.types`` (``Contract``, ``Column``,
``ColumnType``, ``Cardinality``, ``Value_Text`` ... ``Value_FloatVector``, ``Outcome_Passed``,
``Outcome_Rejected``, ``Outcome_Errored``, ``GuestError``, ``RecordOutcome``); and the import
``wit_world.imports.host.begin_record``. A ``result<_, string>`` export reports its error by
raising ``componentize_py_types.Err(message)``.

This module only converts between those types and the SDK's own (and has the runtime build
its outcomes and row values as the WIT types directly, see ``WitOutcomes``); it is imported only inside
the component (``python -m hookhost build`` writes the entry module that imports it), so the
rest of the SDK runs on plain CPython. Importing it resolves the module's one ``@hookhost.hook``
and converts its contract, so a missing hook fails the build.
"""

from __future__ import annotations

from componentize_py_types import Err

import wit_world
from wit_world.imports import host, types

from ._contract import Cardinality, ColumnType, Contract
from ._hook import ConfigError, Outcomes, Runtime, registered_hook
from ._record import Record

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


class WitOutcomes(Outcomes):
    """Outcomes and row values built straight as the generated WIT types."""

    values = _VALUES
    null = types.Value_Null()

    def passed(self, index: int, rows: list[list[types.Value]]) -> types.RecordOutcome:
        return types.RecordOutcome(index, types.Outcome_Passed(rows))

    def rejected(self, index: int, reason: str) -> types.RecordOutcome:
        return types.RecordOutcome(index, types.Outcome_Rejected(reason))

    def errored(self, index: int, message: str, retryable: bool = False) -> types.RecordOutcome:
        return types.RecordOutcome(
            index, types.Outcome_Errored(types.GuestError(message, retryable))
        )


def _begin_record(index: int) -> None:
    # Looked up at each call, so a test can replace `host.begin_record`.
    host.begin_record(index)


_RUNTIME = Runtime(registered_hook(), WitOutcomes())
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
        return _RUNTIME.process(ours, _begin_record)
