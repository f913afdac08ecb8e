"""Hostile fixture, written against the raw bindings: the last record of every call gets no
outcome. The host must notice (``contract_violation``), not pass the record silently.
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
        return outcomes[:-1]
