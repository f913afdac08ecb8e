#!/usr/bin/env python3
"""Prints the benchmark table and the issue-5 targets from criterion's estimates.

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
fuel_off = row("fuel/off/100", 100)
t1 = row("threads/1", 2048)
t2 = row("threads/2", 2048)
n1 = row("threads/native_1", 2048)
n2 = row("threads/native_2", 2048)
hooks = ("text_stats", "file_profile", "require_fields", "memory_hungry")
for hook in hooks:
    row(f"load/compile/{hook}")
    row(f"load/cached/{hook}")
    row(f"load/reused/{hook}")
extism = row("peer/extism/100", 100)
extism_fuel = row("peer/extism_fuel/100", 100)
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


def target(name, measured, ok, miss):
    if measured is None:
        print(f"| {name} | not measured | — |")
    else:
        print(f"| {name} | {measured} | {'met' if ok else 'missed: ' + miss} |")


inst = median("instantiate/pooling")
target("instantiate ≤ 10 µs", inst and fmt(inst), inst and inst <= 10_000,
       inst and f"{(inst / 10_000 - 1) * 100:.0f} % over")
p1000 = per_record[1000]
if p1000:
    per = p1000 / 1000
    marginal = (p1000 - per_record[1]) / 999 if per_record[1] else None
    target("trivial hook ≤ 200 ns/record at batch 1000",
           f"{per:.0f} ns/record (marginal {marginal:.0f} ns)" if marginal else f"{per:.0f} ns",
           per <= 200, f"{per / 200:.1f}× the target")
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
if t1 and t2:
    machine = f"; the native function gets {n1 / n2:.2f}× on this machine in the same run" if n1 and n2 else ""
    target("2 threads ≥ 1.8× 1 thread", f"{t1 / t2:.2f}×{machine}", t1 / t2 >= 1.8, f"{t1 / t2:.2f}× < 1.8×")
if t1 and extism:
    ours = t1 / 2048
    theirs = extism / 100
    target("≥ 5× Extism per-record throughput",
           f"{theirs / ours:.2f}× (hookhost {fmt(ours)}/record in chunks of 16, Extism {fmt(theirs)}/call)",
           theirs / ours >= 5, f"{theirs / ours:.2f}× < 5×")
    if extism_fuel:
        print(f"| (vs Extism with fuel metering) | {extism_fuel / 100 / ours:.2f}× | — |")
