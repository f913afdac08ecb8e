"""Write hookhost hooks in Python.

A hook looks at data records and computes typed feature rows for each, or refuses it. With this
SDK a hook is one dataclass for the feature row and one function from a record to rows:

- the row class is decorated with :func:`features`; the hook's contract (feature name,
  cardinality, typed columns with descriptions) is read from its annotations, so it cannot
  drift from the rows;
- the hook function is decorated with :func:`hook`: ``def f(record: Record) -> list[Row]`` (or
  with a second parameter ``config: Config``, a dataclass parsed from the release config); it
  returns rows or raises :class:`Reject` / :class:`GuestError`;
- ``python -m hookhost build PROJECT_DIR --wit WIT_DIR -o hook.wasm`` turns the project into a
  component with componentize-py.

>>> from typing import Annotated
>>> import hookhost
>>> @hookhost.features(name="text_len", cardinality="one")
... class TextLen:
...     chars: Annotated[int, "Number of characters."]
>>> @hookhost.hook
... def text_len(record: hookhost.Record) -> list[TextLen]:
...     text = record.metadata().get("text")
...     if not isinstance(text, str):
...         raise hookhost.Reject("metadata.text must be a string")
...     return [TextLen(chars=len(text))]
>>> text_len(hookhost.Record("r1", '{"text": "naïve"}'))
[TextLen(chars=5)]

Layout: ``_contract`` (row classes, column types, the contract), ``_values`` (row values to WIT
values), ``_record`` (records and their files), ``_parse`` (typed config/metadata from JSON),
``_outcome`` (rejections, errors, outcomes), ``_hook`` (the hook and the runtime behind the WIT
exports), ``_component`` (the adapter to componentize-py's generated ``wit_world``; only
imported inside a component), ``_build`` (``python -m hookhost build``).
"""

from ._contract import (
    Cardinality,
    Column,
    ColumnType,
    Contract,
    DefinitionError,
    Json,
    contract_of,
    features,
    rename,
)
from ._hook import ConfigError, Hook, Runtime, hook, hook_of
from ._outcome import Errored, GuestError, Passed, RecordOutcome, Reject, Rejected
from ._parse import ParseError, parse_json
from ._record import Record, RecordFile
from ._values import RowError, Value

__version__ = "0.2.0"

__all__ = [
    "Cardinality",
    "Column",
    "ColumnType",
    "ConfigError",
    "Contract",
    "DefinitionError",
    "Errored",
    "GuestError",
    "Hook",
    "Json",
    "ParseError",
    "Passed",
    "Record",
    "RecordFile",
    "RecordOutcome",
    "Reject",
    "Rejected",
    "RowError",
    "Runtime",
    "Value",
    "contract_of",
    "features",
    "hook",
    "hook_of",
    "parse_json",
    "rename",
]
