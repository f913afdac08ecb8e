#!/usr/bin/env python3
"""Prints the benchmark table and the targets (issues 5, 13, 14 and 15) from criterion's estimates.

Usage: summarize.py CRITERION_DIR   (the CRITERION_HOME the benches ran with)
"""
import json
import os
import sys

home = sys.argv[1] if len(sys.argv) > 1 else "results"


def median(path):
    """Median in nanoseconds of benchmark `path` (e.g. "instantiate/pooling"), or None."""
    file = os.path.join(home, path, "new", "estimates.json")
    try:
        with open(file) as f:
            return json.load(f)["median"]["point_estimate"]
    except FileNotFoundError:
        return None


def fmt(ns):
    if ns is None:
        return "—"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.{1 if ns / scale >= 100 else 2}f} {unit}"
    return f"{ns:.0f} ns"


rows = []


def row(path, records=None, note=""):
    ns = median(path)
    per = None if ns is None or not records else ns / records
    rows.append((path, ns, per, note))
    return ns


row("instantiate/pooling")
row("instantiate/on_demand")
per_record = {n: row(f"per_record/chaos/{n}", n) for n in (1, 100, 1000, 10000)}
for n in (1, 16, 100):
    comp = row(f"text_stats/component/{n}", n)
    nat = median(f"text_stats/native/{n}")
    row(f"text_stats/native/{n}", n)
    if comp and nat:
        rows[-2] = rows[-2][:3] + (f"{comp / nat:.2f}× native",)
fuel_on = row("fuel/on/100", 100)
fuel_off = row("fuel/off/100", 100, "epoch interruption only")
fuel_bare = row("fuel/bare/100", 100, "neither fuel nor epochs (no hookhost engine)")
t1 = row("threads/1", 2048)
t2 = row("threads/2", 2048)
n1 = row("threads/native_1", 2048)
n2 = row("threads/native_2", 2048)
hooks = ("text_stats", "file_profile", "require_fields", "memory_hungry")
for hook in hooks:
    row(f"load/compile/{hook}")
    row(f"load/cached/{hook}")
    row(f"load/reused/{hook}")
starts_on = row("per_record_starts/announced/1000", 1000)
starts_off = row("per_record_starts/pooled/1000", 1000)
py = {n: row(f"python_text_stats/component/{n}", n) for n in (16, 256)}
py_native = row("python_text_stats/native_cpython", 1)
py_run1 = row("python_text_stats/host_run_jobs_1", 4096)
py_run2 = row("python_text_stats/host_run_jobs_2", 4096)
e2e1 = row("end_to_end/host_run_jobs_1", 40000)
e2e2 = row("end_to_end/host_run_jobs_2", 40000)
e2e_native = row("end_to_end/native", 40000)
embed_seq = row("end_to_end/embed_sequential", 40000)
embed_two = row("end_to_end/embed_concurrent_2", 40000)
embed_one = row("end_to_end/embed_one_batch", 40000)
cpu1 = row("calibration/cpu_1")
cpu2 = row("calibration/cpu_2")
extism = row("peer/extism/100", 100)
extism_fuel = row("peer/extism_fuel/100", 100)
# feature_tables.rs writes this many rows per iteration.
TABLE_ROWS = 20_000
copy = row("feature_tables/copy", TABLE_ROWS, "per row")
insert = row("feature_tables/insert_per_row", TABLE_ROWS, "per row")
# Issue 14: the two feature sinks over the same rows (benches/parquet.rs), per row.
for rows_name, n in (("text_stats", 100_000), ("all_types", 20_000)):
    jsonl = row(f"sinks/jsonl/{rows_name}", n)
    parquet = row(f"sinks/parquet/{rows_name}", n)
    if jsonl and parquet:
        rows[-1] = rows[-1][:3] + (f"{jsonl / parquet:.2f}× JSONL's throughput",)

print("| benchmark | median | per record | note |")
print("|---|---|---|---|")
for path, ns, per, note in rows:
    print(f"| `{path}` | {fmt(ns)} | {fmt(per) if per else ''} | {note} |")

print()
print("| target | measured | verdict |")
print("|---|---|---|")


def context(text):
    """A row of the targets table that is no target: what one beside it needs read with."""
    print(f"| ({text}) | — | — |")


def target(name, measured, ok, miss):
    if measured is None:
        print(f"| {name} | not measured | — |")
    else:
        print(f"| {name} | {measured} | {'met' if ok else 'missed: ' + miss} |")


inst = median("instantiate/pooling")
target("instantiate (pooling) ≤ 5 µs", inst and fmt(inst), inst and inst <= 5_000,
       inst and f"{inst / 5_000:.2f}× the target")
p1000 = per_record[1000]
if p1000:
    per = p1000 / 1000
    marginal = (p1000 - per_record[1]) / 999 if per_record[1] else None
    target("trivial hook, host + guest ≤ 300 ns/record at batch 1000",
           f"{per:.0f} ns/record (marginal {marginal:.0f} ns)" if marginal else f"{per:.0f} ns",
           per <= 300, f"{per / 300:.1f}× the target")
for n in (16, 100):
    comp, nat = median(f"text_stats/component/{n}"), median(f"text_stats/native/{n}")
    if comp and nat:
        target(f"text_stats ≤ 1.5× native, fuel on (batch {n})", f"{comp / nat:.2f}×",
               comp / nat <= 1.5, f"{comp / nat / 1.5:.2f}× the target")
for hook in hooks:
    ns = median(f"load/cached/{hook}")
    target(f"cached load ≤ 5 ms ({hook})", ns and fmt(ns), ns and ns <= 5e6,
           ns and f"{ns / 5e6:.1f}× the target")
if fuel_on and fuel_off:
    over = fuel_on / fuel_off - 1
    target("fuel on ≤ 15 % over off", f"{over * 100:+.1f} %", over <= 0.15,
           f"{over * 100:.1f} % over")
    if fuel_bare:
        context(f"epoch interruption alone: {(fuel_off / fuel_bare - 1) * 100:+.1f} % over neither")
if t1 and t2:
    machine = f"; the native function gets {n1 / n2:.2f}× on this machine in the same run" if n1 and n2 else ""
    target("2 threads ≥ 1.8× 1 thread", f"{t1 / t2:.2f}×{machine}", t1 / t2 >= 1.8, f"{t1 / t2:.2f}× < 1.8×")
if starts_on and starts_off:
    over = starts_on / starts_off - 1
    target("per-record starts (begin-record) ≤ 5 % over a pooled budget",
           f"{over * 100:+.1f} % ({(starts_on - starts_off) / 1000:.0f} ns/record)", over <= 0.05,
           f"{over * 100:.1f} % over")
for n, ns in py.items():
    if ns and py_native:
        ratio = ns / n / py_native
        target(f"Python text_stats ≤ 3× native CPython (chunks of {n})",
               f"{ratio:.2f}× ({fmt(ns / n)} vs {fmt(py_native)}/record)", ratio <= 3,
               f"{ratio / 3:.2f}× the target")
machine = cpu1 / cpu2 if cpu1 and cpu2 else None
if machine:
    context(f"the machine: 2 CPU-bound threads give {machine:.2f}× 1 in this run")
if e2e1 and e2e2 and machine:
    gain = e2e1 / e2e2
    target("host run --jobs 2 vs 1 ≥ 0.9 × the machine's figure",
           f"{gain:.2f}× of {machine:.2f}×", gain >= 0.9 * machine, f"{gain / machine:.2f} of it")
if py_run1 and py_run2 and machine:
    gain = py_run1 / py_run2
    target("Python hook, host run --jobs 2 vs 1 ≥ 0.9 × the machine's figure",
           f"{gain:.2f}× of {machine:.2f}×", gain >= 0.9 * machine, f"{gain / machine:.2f} of it")
if e2e1 and e2e_native:
    target("host run (1 job) ≤ 1.3× the native program", f"{e2e1 / e2e_native:.2f}×",
           e2e1 / e2e_native <= 1.3, f"{e2e1 / e2e_native / 1.3:.2f}× the target")
if embed_seq and e2e1:
    target("embedding, 4 batches one at a time ≤ 1.1× host run", f"{embed_seq / e2e1:.2f}×",
           embed_seq / e2e1 <= 1.1, f"{embed_seq / e2e1 / 1.1:.2f}× the target")
if embed_seq and embed_one and e2e1:
    context(f"embedding, the 40 000 as one batch: {embed_one / e2e1:.2f}× host run; "
            f"4 batches {embed_seq / embed_one:.2f}× the one")
if embed_seq and embed_two and machine:
    gain = embed_seq / embed_two
    target("embedding, 2 batches at once vs 1 ≥ 0.9 × the machine's figure",
           f"{gain:.2f}× of {machine:.2f}×", gain >= 0.9 * machine, f"{gain / machine:.2f} of it")
if t1 and extism:
    ours = t1 / 2048
    theirs = extism / 100
    target("≥ 5× Extism per-record throughput",
           f"{theirs / ours:.2f}× (hookhost {fmt(ours)}/record in chunks of 16, Extism {fmt(theirs)}/call)",
           theirs / ours >= 5, f"{theirs / ours:.2f}× < 5×")
    if extism_fuel:
        ratio = extism_fuel / 100 / ours
        target("≥ 5× Extism with a fuel limit", f"{ratio:.2f}×", ratio >= 5, f"{ratio:.2f}× < 5×")
if copy and insert:
    target("COPY ≥ 10× one INSERT per row (rows/s into PostgreSQL)",
           f"{insert / copy:.1f}× ({TABLE_ROWS / copy * 1e9:,.0f} against {TABLE_ROWS / insert * 1e9:,.0f} rows/s)",
           insert / copy >= 10, f"{insert / copy:.1f}× < 10×")
