"""The Python examples, natively: the same contract and values as their Rust twins."""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from conftest import REPO, SAMPLES, load_example
from hookhost import Passed, Record, Rejected, Runtime, contract_of, hook_of

# What the Rust example `example-hooks/text-stats` computes for samples/text.jsonl.
TEXT_STATS_EXPECTED = {
    "greeting": (2, 13, 6.0, "Hello,"),
    "pangram": (9, 43, 35 / 9, "quick"),
    "unicode": (5, 23, 19 / 5, "ünïcödé"),
    "whitespace": (4, 26, 4.5, "spaced"),
    "empty": (0, 0, 0.0, None),
    "longest-first": (3, 17, 5.0, "alpha"),
    "lorem": (19, 123, 105 / 19, "consectetur"),
}

RUST_TYPES = {"i64": ("integer", False), "f64": ("number", False), "String": ("text", False)}


def rust_contract(path: str, struct: str):
    """(feature, cardinality, [(name, type, nullable, description)]) of a Rust derived row."""
    source = (REPO / path).read_text()
    feature, cardinality = re.search(
        rf'#\[features\(name = "(\w+)", cardinality = "(\w+)"\)\]\s*pub struct {struct} \{{', source
    ).groups()
    body = source[source.index(f"pub struct {struct} {{"):].split("\n}", 1)[0]
    columns = []
    for doc, name, ty in re.findall(r"((?:\s*/// .*\n)+)\s*(\w+): ([\w<>]+),", body):
        description = " ".join(line.strip()[4:] for line in doc.strip().splitlines())
        optional = re.fullmatch(r"Option<(\w+)>", ty)
        base, nullable = RUST_TYPES[optional.group(1) if optional else ty]
        columns.append((name, base, nullable or bool(optional), description))
    return feature, cardinality, columns


def python_contract(row_class):
    c = contract_of(row_class)
    return (
        c.feature,
        c.cardinality.value,
        [(col.name, col.ty.value, col.nullable, col.description) for col in c.columns],
    )


def test_text_stats_has_the_rust_contract():
    app = load_example("text_stats")
    assert python_contract(app.TextStats) == rust_contract(
        "example-hooks/text-stats/src/lib.rs", "TextStats"
    )


def test_file_profile_has_the_rust_contract():
    app = load_example("file_profile")
    assert python_contract(app.FileProfile) == rust_contract(
        "example-hooks/file-profile/src/lib.rs", "FileProfile"
    )


def sample_records(name: str, **kwargs) -> list[Record]:
    lines = (SAMPLES / name).read_text().splitlines()
    return [
        Record(d["id"], json.dumps(d["metadata"]), size_hint_mb=d.get("size_hint_mb"), **kwargs)
        for d in map(json.loads, filter(str.strip, lines))
    ]


def test_text_stats_values_on_the_samples():
    app = load_example("text_stats")
    records = sample_records("text.jsonl")
    outcomes = Runtime(hook_of(app.text_stats)).process(records, lambda i: None)
    got = {}
    for record, outcome in zip(records, outcomes):
        if isinstance(outcome.outcome, Rejected):
            got[record.id] = outcome.outcome
        else:
            [row] = outcome.outcome.rows
            got[record.id] = tuple(v.payload for v in row)
    assert got == {**TEXT_STATS_EXPECTED, "no-text": Rejected("metadata.text must be a string")}


@pytest.mark.parametrize(
    "text, words",
    [
        ("  the quick  brown fox\njumps ", ["the", "quick", "brown", "fox", "jumps"]),
        # U+001C..U+001F: str.split() splits there, Unicode White_Space (and Rust) does not.
        ("a\x1cb\x1dc\x1ed\x1fe", ["a\x1cb\x1dc\x1ed\x1fe"]),
        # U+0085, U+00A0, U+2028, U+3000 are White_Space; U+200B (zero width space) is not.
        ("a\x85b\xa0c\u2028d\u3000e\u200bf", ["a", "b", "c", "d", "e\u200bf"]),
        ("\t\x0b\x0c\r", []),
    ],
)
def test_words_split_on_unicode_white_space_like_rust(text, words):
    assert load_example("text_stats").words(text) == words


def test_text_stats_rust_unit_cases():
    app = load_example("text_stats")
    assert app.text_stats_of("  the quick  brown fox\njumps ") == app.TextStats(5, 29, 4.2, "quick")
    assert app.text_stats_of("naïve café").char_count == 10
    assert app.text_stats_of(" \n") == app.TextStats(0, 2, 0.0, None)
    # Characters are scalar values, so an astral character counts once.
    assert app.text_stats_of("😀 ab").char_count == 4
    for metadata in ["{}", '{"text": 3}', "[1]", "null"]:
        with pytest.raises(Exception) as e:
            app.text_stats(Record("r", metadata))
        assert str(e.value) == "metadata.text must be a string"


def test_file_profile_on_the_sample_files():
    app = load_example("file_profile")
    runtime = Runtime(hook_of(app.file_profile))
    runtime.configure("{}")
    # As the host does: a record has a files-dir only when DIR/<id>/ exists (doc-3 has none).
    records = [
        Record(r.id, r.metadata_json,
               files_dir=str(SAMPLES / "files" / r.id) if (SAMPLES / "files" / r.id).is_dir() else None)
        for r in sample_records("files.jsonl")
    ]
    outcomes = runtime.process(records, lambda i: None)
    rows = {r.id: o.outcome.rows for r, o in zip(records, outcomes)}
    expected = {}
    for record in records:
        files = sorted(p for p in (SAMPLES / "files" / record.id).glob("*")) if (SAMPLES / "files" / record.id).is_dir() else []
        expected[record.id] = [
            [p.name, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest(),
             p.read_bytes().count(b"\n") + (not p.read_bytes().endswith(b"\n") and p.stat().st_size > 0)]
            for p in files
        ]
    assert {k: [[v.payload for v in row] for row in r] for k, r in rows.items()} == expected
    assert [len(expected[k]) for k in ("doc-1", "doc-2", "doc-3")] == [2, 1, 0]


def test_file_profile_config():
    app = load_example("file_profile")
    runtime = Runtime(hook_of(app.file_profile))
    runtime.configure('{"max_bytes": 12}')
    [outcome] = runtime.process([Record("doc-1", files_dir=str(SAMPLES / "files" / "doc-1"))], lambda i: None)
    assert outcome.outcome.message == "b.csv is 18 bytes, over max_bytes"
    with pytest.raises(Exception, match="invalid config: max_bytes must not be negative"):
        runtime.configure('{"max_bytes": -1}')
    assert app.profile("e", b"").lines == 0 and app.profile("a", b"x\ny").lines == 2
    assert isinstance(Runtime(hook_of(app.file_profile)).process([Record("x")], lambda i: None)[0].outcome, Passed)
