"""The native CPython side of `benches/python.rs` (issue 13): the Python `text_stats` hook
function on this interpreter, timed on request, so criterion measures it beside the component.

Reads the records (JSONL, one `{"id", "metadata"}` object per line, metadata as JSON text) from
the file named by its argument, prints `ready`, then answers each line `N` on stdin with the
nanoseconds N records took (cycling through the records), each record parsed from its JSON
metadata text and passed to the hook function, as the component does.
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "sdk/python/src"), str(ROOT / "example-hooks/python/text_stats")]

import app  # noqa: E402  (the example hook itself)
import hookhost  # noqa: E402


def main() -> None:
    records = [
        (line["id"], line["metadata"])
        for line in map(json.loads, Path(sys.argv[1]).read_text().splitlines())
    ]
    function = app.text_stats
    print("ready", flush=True)
    for command in sys.stdin:
        n = int(command)
        start = time.perf_counter_ns()
        for i in range(n):
            rid, meta = records[i % len(records)]
            rows = function(hookhost.Record(rid, meta))
            assert len(rows) == 1
        print(time.perf_counter_ns() - start, flush=True)


if __name__ == "__main__":
    main()
