"""Why a record did not pass (``Reject``, ``GuestError``), and the outcomes sent to the host."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ._values import Value

__all__ = ["Errored", "GuestError", "Outcome", "Passed", "RecordOutcome", "Reject", "Rejected"]


class Reject(Exception):
    """The record was looked at and refused; ``reason`` says why (``rejections.jsonl``).

    Raise it, or return it from the hook function instead of rows.

    >>> raise Reject("metadata.text must be a string")
    Traceback (most recent call last):
    hookhost._outcome.Reject: metadata.text must be a string
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = str(reason)


class GuestError(Exception):
    """The hook could not process the record (kind ``guest_error``).

    ``retryable`` says whether running the same record again might succeed. Raise it, or return
    it from the hook function.

    >>> GuestError("upstream busy", retryable=True).retryable
    True
    """

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = str(message)
        self.retryable = bool(retryable)


@dataclass(frozen=True)
class Passed:
    """The record passed with these rows (each a list of values in column order)."""

    rows: list[list[Value]]


@dataclass(frozen=True)
class Rejected:
    """The record was refused."""

    reason: str


@dataclass(frozen=True)
class Errored:
    """The record errored (WIT ``guest-error``)."""

    message: str
    retryable: bool = False


Outcome = Union[Passed, Rejected, Errored]


@dataclass(frozen=True)
class RecordOutcome:
    """One record's outcome, naming the record by its index in the call (WIT ``record-outcome``)."""

    index: int
    outcome: Outcome
