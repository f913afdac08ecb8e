"""Hostile fixture, written against the raw bindings: the answer's first two outcomes come back
swapped, as a hook that walks a dict or a pool that finishes out of order returns them. Under
0.1.0 (outcomes matched by position) record 0's row was credited to record 1 and nothing
noticed; under 0.2.0 each outcome names its record by index, so the host credits every row to
its own record whatever the order.
"""

import wit_world
from wit_world.imports import host, types


class WitWorld(wit_world.WitWorld):
    def contract(self) -> types.Contract:
        return types.Contract(
            "echo_id",
            types.Cardinality.ONE,
            [types.Column("id", types.ColumnType.TEXT, False, "The record's id.")],
        )

    def configure(self, config: str) -> None:
        pass

    def process(self, records: list[types.Record]) -> list[types.RecordOutcome]:
        outcomes = []
        for i, record in enumerate(records):
            host.begin_record(i)
            row = [types.Value_Text(record.id)]
            outcomes.append(types.RecordOutcome(i, types.Outcome_Passed([row])))
        if len(outcomes) >= 2:
            outcomes[0], outcomes[1] = outcomes[1], outcomes[0]
        return outcomes
