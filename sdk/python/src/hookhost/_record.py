"""``Record``: one input record, its metadata and its read-only files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from ._outcome import GuestError, Reject
from ._parse import ParseError, load_json, parse_value

__all__ = ["Record", "RecordFile"]

T = TypeVar("T")
_UNPARSED = object()


@dataclass(frozen=True)
class RecordFile:
    """A regular file of a record (see :meth:`Record.files`)."""

    #: The file's name in the record's files-dir; pass it to :meth:`Record.read_file`.
    name: str
    #: Its size in bytes.
    size: int


class Record:
    """One input record: id, JSON metadata, an optional size hint and optional files.

    Build one by hand to test a hook natively:

    >>> record = Record("doc-1", '{"text": "hello"}')
    >>> record.metadata()["text"]
    'hello'
    >>> record.files()  # no files_dir: no files
    []
    """

    __slots__ = ("id", "metadata_json", "size_hint_mb", "files_dir", "_parsed")

    def __init__(
        self,
        id: str,
        metadata_json: str = "{}",
        *,
        size_hint_mb: float | None = None,
        files_dir: str | None = None,
    ) -> None:
        #: The record's id, unique within the batch.
        self.id = id
        #: The metadata exactly as the host passed it (JSON text).
        self.metadata_json = metadata_json
        #: The producer's estimate of the record's size in MiB, if given.
        self.size_hint_mb = size_hint_mb
        #: The record's read-only files directory inside the sandbox, if the run has files.
        self.files_dir = files_dir
        self._parsed: Any = _UNPARSED

    def __repr__(self) -> str:
        return f"Record({self.id!r}, {self.metadata_json!r}, files_dir={self.files_dir!r})"

    @overload
    def metadata(self) -> Any: ...
    @overload
    def metadata(self, into: type[T]) -> T: ...

    def metadata(self, into: Any = None) -> Any:
        """The metadata, parsed: plain JSON values, or an instance of the dataclass ``into``.

        Metadata that does not parse, or does not fit ``into``, raises :class:`Reject`
        (``metadata: <what, where>``), so an uncaught one rejects the record. Extra keys are
        ignored when parsing into a dataclass.
        """
        if self._parsed is _UNPARSED:
            try:
                self._parsed = load_json(self.metadata_json)
            except ValueError as e:
                raise Reject(f"metadata: not valid JSON: {e}") from None
        if into is None:
            return self._parsed
        try:
            return parse_value(into, self._parsed, unknown_fields="ignore")
        except ParseError as e:
            raise Reject(f"metadata: {e}") from None

    def files(self) -> list[RecordFile]:
        """The regular files directly in the files-dir, sorted by name; ``[]`` without one.

        Subdirectories and symlinks are left out. An I/O failure raises :class:`GuestError`.
        """
        if self.files_dir is None:
            return []
        files = []
        try:
            with os.scandir(self.files_dir) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):
                        files.append(RecordFile(entry.name, entry.stat(follow_symlinks=False).st_size))
        except OSError as e:
            raise GuestError(f"record {self.id}: listing {self.files_dir}: {e.strerror or e}") from None
        files.sort(key=lambda f: f.name)
        return files

    def read_file(self, name: str) -> bytes:
        """The content of the record's file ``name`` (a name from :meth:`files`, not a path)."""
        if self.files_dir is None:
            raise GuestError(f"record {self.id} has no files")
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
            raise GuestError(f"record {self.id}: {name!r} is not a file name")
        try:
            with open(os.path.join(self.files_dir, name), "rb") as f:
                return f.read()
        except OSError as e:
            raise GuestError(f"record {self.id}: reading {name}: {e.strerror or e}") from None
