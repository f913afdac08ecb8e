"""Hostile fixture: a record whose ``metadata.alloc`` is true allocates without end.

Each MiB is touched, so the linear memory really grows until the host's cap denies it. CPython
then raises ``MemoryError`` (or aborts in C); the SDK lets ``MemoryError`` propagate, so the call
traps and the host can retry with a doubled cap and finally error the record with
``memory_exhausted``. The other records pass.
"""

from typing import Annotated

import hookhost


@hookhost.features(name="echo_id", cardinality="one")
class EchoId:
    id: Annotated[str, "The record's id."]


@hookhost.hook
def alloc_forever(record: hookhost.Record) -> list[EchoId]:
    if record.metadata().get("alloc"):
        hoard = []
        while True:
            hoard.append(bytearray(b"x" * (1 << 20)))
    return [EchoId(record.id)]
