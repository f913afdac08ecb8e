#!/usr/bin/env python3
"""What each language's `text_stats` component needs from the host, measured through `host run`.

For the Rust, Python and JavaScript `text_stats` (issue 31), side by side in the same minutes:

- size: the component's bytes;
- memory at start: the linear memory after the samples ran (`peak_memory_bytes` in run.json,
  the default cap), and the smallest `--memory` (whole MiB, no doubling) with which the samples
  run at all;
- fuel before the first record: the smallest `--fuel` with which a call of one record
  (`{"text": ""}`) passes: what `process` spends before and in that record, all from the
  record's budget; and the fuel of starting a sandbox (instantiation and `configure`, which run
  on configure's own budget): `fuel_consumed` of that one-record run minus the record's own;
- fuel per record: `fuel_consumed` over 512 short texts in chunks of 256, per record;
- start time per sandbox: `duration_ms` of 512 records in chunks of 1 (512 sandboxes) minus in
  chunks of 256 (2 sandboxes), per sandbox; one job; the median of ROUNDS alternated runs.

Run from the repository root after `make guests python js` and `cargo build -p hookhost --bin
host` (the debug host: wasmtime and the other dependencies are optimised, see Cargo.toml):

    python3 benches/guest_needs.py

The host's compiled-code cache lives in a temporary registry root, filled before anything is
timed. Prints one Markdown table and the load average before and after.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
HOST = os.path.join(ROOT, "target/debug/host")
COMPONENTS = {
    "Rust": "example-hooks/target/wasm32-wasip2/release/text_stats.wasm",
    "Python": "target/python-hooks/text_stats.wasm",
    "JavaScript": "target/js-hooks/text_stats.wasm",
}
SAMPLES = os.path.join(ROOT, "example-hooks/samples/text.jsonl")
MIB = 1 << 20
RECORDS = 512
ROUNDS = 5


class Runner:
    def __init__(self, temp):
        self.temp = temp
        self.root = os.path.join(temp, "registry")
        self.count = 0

    def host(self, *args):
        return subprocess.run([HOST, "--root", self.root, *args], capture_output=True, text=True)

    def run(self, component, records, *args):
        """`host run`; returns run.json, or None when the run failed."""
        self.count += 1
        out = os.path.join(self.temp, f"out{self.count}")
        self.host("run", component, "--input", records, "--out", out, *args)
        path = os.path.join(out, "run.json")
        record = json.load(open(path)) if os.path.exists(path) else None
        shutil.rmtree(out, ignore_errors=True)
        if record is None or record["status"] != "succeeded":
            return None
        return record


def write(path, texts):
    with open(path, "w") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": f"r{i}", "metadata": {"text": text}}) + "\n")
    return path


def smallest(passes, low, high):
    """The smallest value in (low, high] for which `passes` holds, within 0.5 %."""
    while high - low > max(1, high // 200):
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle
    return high


def measure(runner, component, one, many):
    needs = {"size": os.path.getsize(component)}
    samples = runner.run(component, SAMPLES)
    needs["peak"] = samples["peak_memory_bytes"]
    needs["smallest_cap"] = smallest(
        lambda mib: runner.run(component, SAMPLES, "--memory", f"{mib}MiB",
                               "--max-oom-retries", "0") is not None,
        0, 64) * MIB
    needs["first_record_fuel"] = smallest(
        lambda fuel: (r := runner.run(component, one, "--fuel", str(fuel))) is not None
        and r["records"]["passed"] == 1,
        0, 100_000_000)
    alone = runner.run(component, one)
    needs["start_fuel"] = alone["fuel_consumed"] - alone["fuel_per_record_max"]
    chunked = runner.run(component, many, "--chunk-size", "256", "--jobs", "1")
    needs["record_fuel"] = (chunked["fuel_consumed"] - 2 * needs["start_fuel"]) / RECORDS
    return needs


def start_times(runner, components, many):
    """Per-sandbox start in ms, the median of ROUNDS rounds, languages alternated."""
    starts = {name: [] for name in components}
    for _ in range(ROUNDS):
        for name, component in components.items():
            ms = {}
            for chunk in ("1", "256"):
                record = runner.run(component, many, "--chunk-size", chunk, "--jobs", "1")
                ms[chunk] = record["duration_ms"]
            starts[name].append((ms["1"] - ms["256"]) / (RECORDS - 2))
    return {name: statistics.median(values) for name, values in starts.items()}


def main():
    components = {name: os.path.join(ROOT, path) for name, path in COMPONENTS.items()}
    for path in [HOST, *components.values()]:
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: `make guests python js` and "
                     "`cargo build -p hookhost --bin host` make everything this needs")
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as temp:
        runner = Runner(temp)
        # A registry root, so that the code cache is used; each component compiled once here.
        runner.host("publish", components["Rust"], "--name", "warm_up")
        for component in components.values():
            runner.host("inspect", component)
        one = write(os.path.join(temp, "one.jsonl"), [""])
        many = write(os.path.join(temp, "many.jsonl"),
                     [f"the quick brown fox {i}" for i in range(RECORDS)])
        needs = {name: measure(runner, c, one, many) for name, c in components.items()}
        starts = start_times(runner, components, many)
    print("| | " + " | ".join(components) + " |")
    print("|---|" + "---|" * len(components))
    rows = [
        ("component size", lambda n: f"{n['size'] / 1e6:.2f} MB"),
        ("linear memory after the samples", lambda n: f"{n['peak'] / MIB:.2f} MiB"),
        ("smallest `--memory` that runs the samples", lambda n: f"{n['smallest_cap'] // MIB} MiB"),
        ("smallest `--fuel` for a one-record call", lambda n: f"{n['first_record_fuel']:,}"),
        ("fuel to start a sandbox (configure's budget)", lambda n: f"{n['start_fuel']:,}"),
        ("fuel per short record, chunks of 256", lambda n: f"{n['record_fuel']:,.0f}"),
    ]
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(needs[name]) for name in components) + " |")
    print("| start time per sandbox (median of 5) | "
          + " | ".join(f"{starts[name]:.2f} ms" for name in components) + " |")
    print(f"load average after: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
