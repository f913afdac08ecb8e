"""Python `text_stats` on the host against the same function on native CPython (issue 13).

Both read the same records (`benches/texts.rs`'s ~1 KB texts, written here as JSONL) and do the
same work per record, JSON parsing of the metadata included:

- **native**: the hook function of `example-hooks/python/text_stats/app.py`, called with the SDK's
  `Record` on this interpreter (the venv's CPython), timed with `time.perf_counter` over all the
  records, best of `--repeat` runs;
- **component**: `host run target/python-hooks/text_stats.wasm --jobs 1 --chunk-size N` over the
  same file, per-record time from `run.json`'s `duration_ms` (the run itself: reading, calls,
  writing; not the component's load), best of `--repeat` runs, for each chunk size.

Prints one line per figure and the ratios, measured in the same run. Usage (from the repo root,
after `make python` and a release build of the host):

    target/python-venv/bin/python benches/python_vs_cpython.py --host target/release/host
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def metadata(i: int) -> str:
    """The same text as `benches/texts.rs`'s `metadata(i)`."""
    text = " ".join(WORDS[(w * 7 + i) % len(WORDS)] for w in range(160))
    return json.dumps({"text": text}, separators=(",", ":"))


def native(records: list[tuple[str, str]], repeat: int) -> float:
    sys.path[:0] = [str(ROOT / "sdk/python/src"), str(ROOT / "example-hooks/python/text_stats")]
    import app  # noqa: E402  (the example hook itself)
    import hookhost

    function = getattr(app, "text_stats")
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for rid, meta in records:
            function(hookhost.Record(rid, meta))
        best = min(best, time.perf_counter() - start)
    return best / len(records)


def component(host: str, batch: Path, chunk: int, repeat: int) -> float:
    best = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(repeat + 1):  # the first run fills the code cache
            out = Path(tmp) / f"out-{chunk}-{attempt}"
            subprocess.run(
                [host, "--root", str(Path(tmp) / "root"), "run",
                 str(ROOT / "target/python-hooks/text_stats.wasm"),
                 "--input", str(batch), "--out", str(out),
                 "--jobs", "1", "--chunk-size", str(chunk)],
                check=True, stdout=subprocess.DEVNULL,
            )
            run = json.loads((out / "run.json").read_text())
            assert run["records"]["passed"] == run["records"]["total"], run["records"]
            if attempt:
                best = min(best, run["duration_ms"] / 1000 / run["records"]["total"])
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default=str(ROOT / "target/release/host"))
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    records = [(f"r{i}", metadata(i)) for i in range(args.records)]
    with tempfile.TemporaryDirectory() as tmp:
        batch = Path(tmp) / "batch.jsonl"
        batch.write_text("".join(
            json.dumps({"id": rid, "metadata": json.loads(meta)}) + "\n" for rid, meta in records))
        cpython = native(records, args.repeat)
        print(f"native CPython {sys.version.split()[0]}: {cpython * 1e6:.1f} µs per record")
        for chunk in (16, 256):
            per = component(args.host, batch, chunk, args.repeat)
            print(f"component, chunks of {chunk}: {per * 1e6:.1f} µs per record "
                  f"= {per / cpython:.2f}x native (goal <= 3x)")


if __name__ == "__main__":
    main()
