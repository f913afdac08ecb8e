"""Hostile fixture, written against the raw bindings: ``contract()`` never returns. The host
must give loading/publishing a budget of its own and refuse the component, not hang.
"""

import wit_world
from wit_world.imports import types


class WitWorld(wit_world.WitWorld):
    def contract(self) -> types.Contract:
        n = 0
        while True:
            n += 1

    def configure(self, config: str) -> None:
        pass

    def process(self, records: list[types.Record]) -> list[types.RecordOutcome]:
        return []
