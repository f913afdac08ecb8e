"""Hostile fixture, written against the raw bindings: the outcomes of records 0 and 1 name each
other's index, so record 0's row would be credited to record 1. The host must refuse the answer
(``contract_violation``) rather than store rows under the wrong record.
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
            outcomes[0].index, outcomes[1].index = 1, 0
        return outcomes
