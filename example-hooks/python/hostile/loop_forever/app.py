"""Hostile fixture: a record whose ``metadata.loop`` is true loops forever; the others pass.

The SDK announces each record (``begin-record``), so the host stops only the looping record
(``fuel_exhausted`` or ``timeout``) and the others keep their rows.
"""

from typing import Annotated

import hookhost


@hookhost.features(name="echo_id", cardinality="one")
class EchoId:
    id: Annotated[str, "The record's id."]


@hookhost.hook
def loop_forever(record: hookhost.Record) -> list[EchoId]:
    if record.metadata().get("loop"):
        n = 0
        while True:
            n += 1
    return [EchoId(record.id)]
