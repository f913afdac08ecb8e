"""Reads a features.parquet with pyarrow, an independent reader, for tests/parquet.rs.

    read_parquet.py FILE [--no-rows]

Prints one JSON document: the file's schema as pyarrow sees it (Arrow type, nullability,
Parquet logical type of each column), its row groups (rows and compression of each), and,
unless --no-rows, every row as an object in a form JSON can hold and the Rust side can rebuild
from features.jsonl:

- timestamp: ISO 8601 in UTC with microseconds, e.g. "2024-05-01T10:00:00.500000Z"
- date: "YYYY-MM-DD"; uuid: hyphenated lowercase; json: the parsed document
- float vector: a list of numbers; null: null
"""

import datetime
import json
import sys
import uuid

import pyarrow as pa
import pyarrow.parquet as pq


def plain(value, logical):
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise SystemExit(f"a timestamp without a time zone: {value!r}")
        utc = value.astimezone(datetime.timezone.utc)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes) and logical == "UUID":
        return str(uuid.UUID(bytes=value))
    if isinstance(value, str) and logical == "JSON":
        return json.loads(value)
    if isinstance(value, list):
        return [plain(item, None) for item in value]
    return value


def main():
    path = sys.argv[1]
    rows = "--no-rows" not in sys.argv[2:]
    file = pq.ParquetFile(path)
    metadata = file.metadata
    arrow_schema = file.schema_arrow
    logical = {}
    for i in range(len(file.schema)):
        column = file.schema.column(i)
        top = column.path.split(".")[0]
        logical.setdefault(top, str(column.logical_type))
    columns = [
        {
            "name": field.name,
            "type": str(field.type),
            "nullable": field.nullable,
            "logical": logical.get(field.name),
            "extension": getattr(field.type, "extension_name", None),
        }
        for field in arrow_schema
    ]
    groups = []
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        groups.append(
            {
                "rows": group.num_rows,
                "compression": sorted(
                    {group.column(c).compression for c in range(group.num_columns)}
                ),
            }
        )
    out = {
        "num_rows": metadata.num_rows,
        "created_by": metadata.created_by,
        "columns": columns,
        "row_groups": groups,
    }
    if rows:
        table = file.read()
        names = table.column_names
        out["rows"] = [
            {name: plain(row[name], logical.get(name)) for name in names}
            for row in table.to_pylist()
        ]
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
