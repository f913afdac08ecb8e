"""Hostile fixture: a record with ``metadata.depth`` recurses that deep (``-1``: without end).

It lifts CPython's recursion limit first, so ``RecursionError`` (which the SDK would turn into
an ``errored`` outcome) does not stop it: the recursion runs until the interpreter's stack
guard, the wasm stack or the memory cap stops it. The host must error that record only.
"""

import sys
from typing import Annotated

import hookhost


@hookhost.features(name="echo_id", cardinality="one")
class EchoId:
    id: Annotated[str, "The record's id."]


def down(n: int) -> int:
    return 0 if n == 0 else 1 + down(n - 1)


@hookhost.hook
def deep_recursion(record: hookhost.Record) -> list[EchoId]:
    depth = record.metadata().get("depth")
    if isinstance(depth, int):
        sys.setrecursionlimit(2**31 - 1)
        down(depth)
    return [EchoId(record.id)]
