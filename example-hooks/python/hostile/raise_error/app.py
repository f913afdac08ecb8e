"""Hostile fixture: a record whose ``metadata.raise`` is true raises an exception the author did
not mean; the SDK turns it into that record's ``errored`` outcome
(``ZeroDivisionError: division by zero (at app.py:N)``, not retryable) and the others pass.
"""

from typing import Annotated

import hookhost


@hookhost.features(name="echo_id", cardinality="one")
class EchoId:
    id: Annotated[str, "The record's id."]


@hookhost.hook
def raise_error(record: hookhost.Record) -> list[EchoId]:
    if record.metadata().get("raise"):
        return [EchoId(str(1 // 0))]
    return [EchoId(record.id)]
