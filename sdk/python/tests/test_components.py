"""Components built with componentize-py against the WIT, and run on wasmtime.

These need the venv (componentize-py, wasmtime): ``make -C sdk/python test``, or select them with
``-m build``. Every example and fixture is built once per session (see ``conftest.components``).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import pytest

from conftest import HOOKS, SAMPLES, WIT, load_example
from test_examples import TEXT_STATS_EXPECTED, python_contract

pytestmark = pytest.mark.build

COMPONENT_MAGIC = b"\0asm\x0d\x00\x01\x00"  # a component, not a core module


def sandbox(components, name, **kwargs):
    import wasmhost
    return wasmhost.Sandbox(components[name], **kwargs)


def records(*metadata):
    return [{"id": f"r{i}", "metadata": json.dumps(m)} for i, m in enumerate(metadata)]


def test_every_example_and_fixture_builds_into_a_component(components):
    for name, path in components.items():
        assert path.read_bytes()[:8] == COMPONENT_MAGIC, name


def test_text_stats_component_matches_the_rust_contract_and_values(components):
    box = sandbox(components, "text_stats")
    contract = box.contract()
    feature, cardinality, columns = python_contract(load_example("text_stats").TextStats)
    assert (contract["feature"], contract["cardinality"]) == (feature, cardinality)
    assert contract["columns"] == [tuple(c) for c in columns]
    assert box.configure("{}") is None
    lines = [json.loads(l) for l in (SAMPLES / "text.jsonl").read_text().splitlines() if l.strip()]
    batch = [{"id": d["id"], "metadata": json.dumps(d["metadata"]), "size_hint_mb": d.get("size_hint_mb")}
             for d in lines]
    outcomes = box.process(batch)
    assert box.announced == list(range(len(batch)))
    assert [index for index, _ in outcomes] == list(range(len(batch)))
    got = {}
    for record, (_, outcome) in zip(batch, outcomes):
        got[record["id"]] = tuple(v for _, v in outcome[1][0]) if outcome[0] == "passed" else outcome
    assert got == {**TEXT_STATS_EXPECTED, "no-text": ("rejected", "metadata.text must be a string")}


def test_file_profile_component_reads_files_through_wasi(components):
    box = sandbox(components, "file_profile", files=SAMPLES / "files")
    assert box.configure('{"max_bytes": "big"}') == (
        "invalid config: max_bytes: expected an integer, got a string"
    )
    assert box.configure("{}") is None
    outcomes = box.process([
        {"id": "doc-1", "files_dir": "/files/doc-1"},
        {"id": "doc-2", "files_dir": "/files/doc-2"},
        {"id": "doc-3"},
    ])
    native = load_example("file_profile")
    expected = [
        [[("text", p.name), ("integer", len(p.read_bytes())),
          ("text", native.profile(p.name, p.read_bytes()).sha256),
          ("integer", native.profile(p.name, p.read_bytes()).lines)]
         for p in sorted((SAMPLES / "files" / doc).iterdir())]
        for doc in ("doc-1", "doc-2")
    ] + [[]]
    assert outcomes == [(i, ("passed", rows)) for i, rows in enumerate(expected)]


def test_issue_13_a_raising_record_errors_alone_in_the_component(components):
    box = sandbox(components, "raise_error")
    outcomes = box.process(records({}, {"raise": True}, {}))
    assert outcomes[0] == (0, ("passed", [[("text", "r0")]]))
    assert outcomes[2] == (2, ("passed", [[("text", "r2")]]))
    index, (kind, message, retryable) = outcomes[1]
    assert (index, kind, retryable) == (1, "errored", False)
    source = (HOOKS["raise_error"] / "app.py").read_text().splitlines()
    line = next(n for n, text in enumerate(source, 1) if "1 // 0" in text)
    assert message == f"ZeroDivisionError: division by zero (at app.py:{line})"


@pytest.mark.parametrize(
    "name, metadata, limits, trap",
    [
        ("loop_forever", {"loop": True}, {"fuel_per_record": 300_000_000}, "all fuel consumed"),
        ("alloc_forever", {"alloc": True}, {"memory_bytes": 48 << 20}, "unreachable"),
        ("deep_recursion", {"depth": -1}, {"fuel_per_record": 300_000_000, "memory_bytes": 48 << 20}, ""),
    ],
)
def test_a_runaway_record_is_the_one_announced_when_the_call_traps(components, name, metadata, limits, trap):
    box = sandbox(components, name, **limits)
    wasmhost = sys.modules["wasmhost"]
    with pytest.raises(wasmhost.Trapped) as e:
        box.process(records({}, metadata, {}))
    # The host charges the trap to record 1, the last one announced, and reruns record 2.
    assert (e.value.current, e.value.announced) == (1, [0, 1])
    assert trap in str(e.value.error)
    # Bounded work in the same fixture passes.
    if name == "deep_recursion":
        fresh = sandbox(components, name)
        assert fresh.process(records({"depth": 200})) == [(0, ("passed", [[("text", "r0")]]))]


def test_raw_fixtures_misname_their_outcomes(components):
    swapped = sandbox(components, "swap_indices").process(records({}, {}, {}))
    # The first two outcomes come back in swapped order, each still naming its own record.
    assert swapped == [
        (1, ("passed", [[("text", "r1")]])),
        (0, ("passed", [[("text", "r0")]])),
        (2, ("passed", [[("text", "r2")]])),
    ]
    box = sandbox(components, "drop_outcome")
    assert [i for i, _ in box.process(records({}, {}, {}))] == [0, 1]
    assert box.announced == [0, 1, 2]


def test_contract_loop_never_answers(components):
    import wasmhost
    box = sandbox(components, "contract_loop", fuel_per_record=300_000_000)
    with pytest.raises(wasmhost.Trapped, match="trapped during record None") as e:
        box.contract()
    assert "all fuel consumed" in str(e.value.error)


def test_componentize_py_needs_about_14_mib(components):
    import wasmhost
    with pytest.raises(Exception):
        wasmhost.Sandbox(components["text_stats"], memory_bytes=8 << 20).contract()
    assert wasmhost.Sandbox(components["text_stats"], memory_bytes=24 << 20).configure() is None


@pytest.mark.parametrize(
    "source, message",
    [
        (
            """
            import hookhost

            @hookhost.features(name="sizes", cardinality="many")
            class Sizes:
                size: bytes
            """,
            "DefinitionError: Sizes.size: unsupported annotation bytes",
        ),
        (
            """
            import hookhost

            @hookhost.features(name="Sizes", cardinality="many")
            class Sizes:
                size: int
            """,
            "DefinitionError: Sizes: feature name 'Sizes' must match [a-z][a-z0-9_]*",
        ),
        (
            """
            import hookhost

            @hookhost.features(name="sizes", cardinality="many")
            class Sizes:
                size: int

            @hookhost.hook
            def sizes(record: hookhost.Record) -> Sizes:
                return []
            """,
            "DefinitionError: hook function 'sizes': return annotation",
        ),
        ("import hookhost\n", "exactly one @hookhost.hook function, found 0"),
        ("import no_such_module\n", "ModuleNotFoundError: No module named 'no_such_module'"),
    ],
)
def test_a_bad_definition_fails_the_build_with_pythons_message(tmp_path, capfd, source, message):
    import componentize_py  # noqa: F401  (the venv has it; a missing one fails)
    (tmp_path / "app.py").write_text(textwrap.dedent(source))
    result = subprocess.run(
        [sys.executable, "-m", "hookhost", "build", str(tmp_path), "--wit", str(WIT),
         "-o", str(tmp_path / "out.wasm")],
        capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "componentize-py failed" in result.stderr
    assert not (tmp_path / "out.wasm").exists()


def test_build_prints_the_output_path_and_refuses_a_project_without_app(tmp_path):
    import componentize_py  # noqa: F401  (the venv has it; a missing one fails)
    result = subprocess.run(
        [sys.executable, "-m", "hookhost", "build", str(tmp_path), "--wit", str(WIT), "-o", str(tmp_path / "x.wasm")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr == f"hookhost build: {tmp_path} has no app module 'app' (app.py); pass --module\n"


def test_the_adapter_on_the_generated_bindings(tmp_path, monkeypatch):
    """The adapter against the real `wit_world` package, on CPython, with a fake begin_record."""
    import componentize_py  # noqa: F401  (the venv has it; a missing one fails)
    subprocess.run(
        [sys.executable, "-c", "import sys; from componentize_py import script; sys.argv[0]='componentize-py'; sys.exit(script())",
         "-q", "-d", str(WIT), "-w", "hook", "bindings", str(tmp_path)],
        check=True,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for module in [m for m in sys.modules if m == "hookhost._component" or m.startswith("wit_world")]:
        monkeypatch.delitem(sys.modules, module)
    app = load_example("text_stats")
    from wit_world.imports import host, types
    from componentize_py_types import Err

    announced = []
    monkeypatch.setattr(host, "begin_record", announced.append)
    component = importlib.import_module("hookhost._component")
    world = component.WitWorld()
    contract = world.contract()
    assert contract.feature == "text_stats" and contract.cardinality is types.Cardinality.ONE
    assert contract.columns[3] == types.Column(
        "longest_word", types.ColumnType.TEXT, True, "The first of the longest words; null when there are no words."
    )
    world.configure("{}")
    with pytest.raises(Err) as e:
        world.configure("{")
    assert e.value.value.startswith("invalid config: not valid JSON")
    outcomes = world.process([
        types.Record("a", '{"text": "hi there"}', None, None),
        types.Record("b", "{}", 0.5, None),
    ])
    assert announced == [0, 1]
    assert outcomes == [
        types.RecordOutcome(0, types.Outcome_Passed([[
            types.Value_Integer(2), types.Value_Integer(8), types.Value_Number(3.5), types.Value_Text("there"),
        ]])),
        types.RecordOutcome(1, types.Outcome_Rejected("metadata.text must be a string")),
    ]
    assert app.text_stats is component._RUNTIME.hook.function
