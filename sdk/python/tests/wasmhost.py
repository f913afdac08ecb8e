"""A small stand-in for the host, on wasmtime-py, to run built components in the tests.

It does what the tests need of the real host and no more: instantiate a component with WASI
(nothing inherited; a files directory preopened read-only at ``/files``), serve the
``hookhost:hook/host@0.2.0`` import ``begin-record`` (recording the announced indices and
giving each record a fresh fuel budget), cap linear memory, and turn the WIT values that
wasmtime-py returns into plain Python. Recovery (reruns after a trap, OOM retries) is the real
host's job and is not modelled: a trap is raised as :class:`Trapped`, naming the record that was
announced last.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component as wc

HOST_INTERFACE = "hookhost:hook/host@0.2.0"
DEFAULT_FUEL = 2_000_000_000
DEFAULT_MEMORY = 64 << 20


@functools.cache
def engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    config.consume_fuel = True
    return wasmtime.Engine(config)


@functools.cache
def component(path: str) -> wc.Component:
    return wc.Component.from_file(engine(), path)


class Trapped(Exception):
    """The call trapped (fuel, memory, abort...); ``current`` is the last announced record."""

    def __init__(self, error: Exception, current: int | None, announced: list[int]) -> None:
        super().__init__(f"trapped during record {current}: {error}")
        self.error = error
        self.current = current
        self.announced = announced


@dataclass
class Sandbox:
    wasm: Path
    fuel_per_record: int = DEFAULT_FUEL
    memory_bytes: int = DEFAULT_MEMORY
    files: Path | None = None
    announced: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.store = wasmtime.Store(engine())
        self.store.set_fuel(self.fuel_per_record)
        self.store.set_limits(memory_size=self.memory_bytes)
        wasi = wasmtime.WasiConfig()
        if self.files is not None:
            wasi.preopen_dir(str(self.files), "/files", fs_mutable=False)
        self.store.set_wasi(wasi)
        linker = wc.Linker(engine())
        linker.add_wasip2()
        with linker.root() as root:
            with root.add_instance(HOST_INTERFACE) as host:
                host.add_func("begin-record", self._begin_record)
        self.instance = linker.instantiate(self.store, component(str(self.wasm)))

    def _begin_record(self, _context: Any, index: int) -> None:
        self.announced.append(index)
        self.store.set_fuel(self.fuel_per_record)

    def _call(self, name: str, *args: Any) -> Any:
        func = self.instance.get_func(self.store, name)
        self.announced.clear()
        self.store.set_fuel(self.fuel_per_record)
        try:
            result = func(self.store, *args)
        except wasmtime.WasmtimeError as e:
            current = self.announced[-1] if self.announced else None
            raise Trapped(e, current, list(self.announced)) from e
        func.post_return(self.store)
        return result

    def contract(self) -> dict:
        c = self._call("contract")
        return {
            "feature": c.feature,
            "cardinality": c.cardinality,
            "columns": [
                (col.name, col.ty, col.nullable, col.description) for col in c.columns
            ],
        }

    def configure(self, config: str = "{}") -> str | None:
        """``None`` when configured, else the error text."""
        return self._call("configure", config)

    def process(self, records: list[dict]) -> list[tuple[int, tuple]]:
        """``[(index, ("passed", rows) | ("rejected", reason) | ("errored", message, retryable))]``."""
        wit_records = []
        for r in records:
            rec = wc.Record()
            setattr(rec, "id", r["id"])
            setattr(rec, "metadata", r.get("metadata", "{}"))
            setattr(rec, "size-hint-mb", r.get("size_hint_mb"))
            setattr(rec, "files-dir", r.get("files_dir"))
            wit_records.append(rec)
        return [(o.index, _outcome(o.outcome)) for o in self._call("process", wit_records)]


def _outcome(outcome: Any) -> tuple:
    # wasmtime-py returns a variant whose cases have distinct Python types as the bare payload:
    # passed -> list of rows, rejected -> str, errored -> a guest-error record.
    if isinstance(outcome, list):
        return ("passed", [[_value(v) for v in row] for row in outcome])
    if isinstance(outcome, str):
        return ("rejected", outcome)
    return ("errored", outcome.message, outcome.retryable)


def _value(value: Any) -> tuple:
    if value is None or getattr(value, "tag", None) == "null":
        return ("null", None)
    return (value.tag, value.payload)
