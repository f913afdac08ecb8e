"""``file_profile``: one row per file of a record — name, size, SHA-256 and line count.

The Python twin of ``example-hooks/file-profile`` (Rust): a cardinality-``many`` hook that reads
the record's files through the read-only files-dir the host mounts in the sandbox
(``Record.files``, ``Record.read_file``). A record without files passes with zero rows. It also
shows a typed config: ``{"max_bytes": N}`` (optional) errors a record whose file is larger.

Build and run it from the repository root::

    target/python-venv/bin/python -m hookhost build example-hooks/python/file_profile \\
        --wit wit -o target/python-hooks/file_profile.wasm
    host run target/python-hooks/file_profile.wasm \\
        --input example-hooks/samples/files.jsonl --files example-hooks/samples/files \\
        --out /tmp/out/files
"""

import hashlib
from dataclasses import dataclass
from typing import Annotated

import hookhost


@hookhost.features(name="file_profile", cardinality="many")
class FileProfile:
    """A profile of one file."""

    name: Annotated[str, "The file's name in the record's files."]
    bytes: Annotated[int, "Size in bytes."]
    sha256: Annotated[str, "SHA-256 of the content, lowercase hex."]
    lines: Annotated[
        int, "Number of lines: newline bytes, plus one if a non-empty file does not end in a newline."
    ]


@dataclass
class Config:
    #: Files larger than this error their record (not retryable); no limit when absent.
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.max_bytes is not None and self.max_bytes < 0:
            raise ValueError("max_bytes must not be negative")


def profile(name: str, content: bytes) -> FileProfile:
    unterminated = bool(content) and not content.endswith(b"\n")
    return FileProfile(
        name=name,
        bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        lines=content.count(b"\n") + unterminated,
    )


@hookhost.hook
def file_profile(record: hookhost.Record, config: Config) -> list[FileProfile]:
    rows = []
    for file in record.files():  # sorted by name, so the rows are too
        if config.max_bytes is not None and file.size > config.max_bytes:
            raise hookhost.GuestError(f"{file.name} is {file.size} bytes, over max_bytes")
        rows.append(profile(file.name, record.read_file(file.name)))
    return rows
