"""Records: metadata (plain or typed), files listed and read by name."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from hookhost import GuestError, Record, RecordFile, Reject


def test_metadata_is_parsed_once_and_kept_as_text():
    record = Record("r", '{"text": "hello", "n": [1, 2]}', size_hint_mb=1.5)
    assert record.metadata() == {"text": "hello", "n": [1, 2]}
    assert record.metadata() is record.metadata()
    assert record.metadata_json == '{"text": "hello", "n": [1, 2]}'
    assert record.size_hint_mb == 1.5 and record.files_dir is None


@dataclass
class Book:
    title: str
    year: int | None


def test_typed_metadata_ignores_extra_keys_and_rejects_what_does_not_fit():
    assert Record("r", '{"title": "Dune", "year": 1965, "pages": 412}').metadata(Book) == Book("Dune", 1965)
    assert Record("r", '{"title": "Emma"}').metadata(Book) == Book("Emma", None)
    with pytest.raises(Reject) as e:
        Record("r", '{"title": 5}').metadata(Book)
    assert e.value.reason == "metadata: title: expected a string, got an integer"


def test_lone_surrogates_are_not_text():
    # serde_json (the Rust SDK) refuses them too; they could not be sent back as text.
    with pytest.raises(Reject, match="lone surrogate"):
        Record("r", '{"text": "\\ud800"}').metadata()
    assert Record("r", '{"text": "\\ud83d\\ude00"}').metadata() == {"text": "😀"}
    # Whether the text is ASCII or not, an escaped or a raw lone surrogate is refused ...
    for text in ['{"text": "é \\uDFFF"}', '{"text": "x\ud800"}', '{"k\udc00": 1}']:
        with pytest.raises(Reject, match="lone surrogate"):
            Record("r", text).metadata()
    # ... and an escaped backslash before `ud800` is text, not an escape.
    assert Record("r", '{"text": "\\\\ud800", "é": 1}').metadata() == {"text": "\\ud800", "é": 1}


def test_files_are_listed_sorted_and_read_by_name(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.csv").write_bytes(b"1,2\n")
    (tmp_path / "a.txt").write_bytes(b"hello")
    os.symlink(tmp_path / "a.txt", tmp_path / "link")
    record = Record("r", files_dir=str(tmp_path))
    assert record.files() == [RecordFile("a.txt", 5), RecordFile("b.csv", 4)]
    assert record.read_file("b.csv") == b"1,2\n"
    for bad in ["../etc/passwd", "..", "", "a/b"]:
        with pytest.raises(GuestError, match="is not a file name"):
            record.read_file(bad)
    with pytest.raises(GuestError, match=r"^record r: reading missing: No such file"):
        record.read_file("missing")


def test_a_record_without_files():
    record = Record("r")
    assert record.files() == []
    with pytest.raises(GuestError, match="record r has no files"):
        record.read_file("a.txt")
    with pytest.raises(GuestError, match=r"^record r: listing /nonexistent"):
        Record("r", files_dir="/nonexistent").files()
