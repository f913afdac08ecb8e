"""``text_stats``: word and character statistics of ``metadata.text``, one row per record.

The Python twin of ``example-hooks/text-stats`` (Rust): the same contract (feature, columns,
types, nullability and descriptions) and the same values on every input.

Words are the maximal runs of characters that are not Unicode ``White_Space`` — exactly Rust's
``str::split_whitespace``. Python's ``str.split()`` is *not* used: it also splits on the four
control characters U+001C..U+001F (which ``str.isspace`` counts as whitespace and Unicode does
not). Lengths are counted in Unicode scalar values (Python's ``len`` on ``str``, Rust's
``chars().count()``).

Build and run it from the repository root::

    target/python-venv/bin/python -m hookhost build example-hooks/python/text_stats \\
        --wit wit -o target/python-hooks/text_stats.wasm
    host run target/python-hooks/text_stats.wasm \\
        --input example-hooks/samples/text.jsonl --out /tmp/out/text
"""

import re
from typing import Annotated

import hookhost

#: Unicode's White_Space property (PropList.txt), the set Rust's `split_whitespace` splits on.
WHITE_SPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WORD = re.compile(f"[^{re.escape(WHITE_SPACE)}]+")


@hookhost.features(name="text_stats", cardinality="one")
class TextStats:
    """Word and character statistics of a text."""

    word_count: Annotated[int, "Number of whitespace-separated words."]
    char_count: Annotated[int, "Number of characters (Unicode scalar values)."]
    mean_word_length: Annotated[float, "Mean number of characters per word; 0 when there are no words."]
    longest_word: Annotated[str | None, "The first of the longest words; null when there are no words."]


def words(text: str) -> list[str]:
    """The words of ``text``: maximal runs of non-``White_Space`` characters."""
    return _WORD.findall(text)


def text_stats_of(text: str) -> TextStats:
    found = words(text)
    return TextStats(
        word_count=len(found),
        char_count=len(text),
        mean_word_length=sum(map(len, found)) / len(found) if found else 0.0,
        # `max` keeps the first of equal maxima, as the Rust example does.
        longest_word=max(found, key=len) if found else None,
    )


@hookhost.hook
def text_stats(record: hookhost.Record) -> list[TextStats]:
    metadata = record.metadata()
    text = metadata.get("text") if isinstance(metadata, dict) else None
    if not isinstance(text, str):
        raise hookhost.Reject("metadata.text must be a string")
    return [text_stats_of(text)]
