"""Rows as Arrow tables typed by the ClickHouse columns they go into: the insert format.

clickhouse-connect turns Python rows into ClickHouse's Native format value by value, in
Python; for a span row of 47 columns that cost more than decoding and mapping the span
together. An Arrow table is built a column at a time in C, and ClickHouse (server or chDB)
reads it in C++, so :class:`~agentledger.collector.store.Store` inserts every row this way.

The Arrow type of each column follows from its ClickHouse type, read from the table itself,
so that the DDL in ``schemas/sql`` stays the one place where column types are written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

_WRAPPERS: Final = re.compile(r"^(?:LowCardinality|Nullable)\((.*)\)$")
_DECIMAL: Final = re.compile(r"^Decimal\((\d+),\s*(\d+)\)$")
_DATETIME64: Final = re.compile(r"^DateTime64\((\d)(?:,\s*'([^']*)')?\)$")
_PLAIN: Final = {
    "String": pa.string(),
    "Bool": pa.bool_(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Date": pa.date32(),
}
_TIME_UNITS: Final = {0: "s", 3: "ms", 6: "us", 9: "ns"}


class UnsupportedColumnType(ValueError):
    """A ClickHouse column type that has no Arrow counterpart here."""


def arrow_type(clickhouse_type: str) -> pa.DataType:
    """The Arrow type that ClickHouse reads into a column of ``clickhouse_type``.

    ``LowCardinality`` and ``Nullable`` wrappers do not change it: Arrow arrays carry their
    own nulls, and ClickHouse builds the dictionary of a low-cardinality column itself.
    """
    name = clickhouse_type.strip()
    while wrapped := _WRAPPERS.match(name):
        name = wrapped.group(1).strip()
    if name in _PLAIN:
        return _PLAIN[name]
    if name.startswith("FixedString("):
        return pa.string()
    if decimal := _DECIMAL.match(name):
        precision, scale = int(decimal.group(1)), int(decimal.group(2))
        return (
            pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        )
    if moment := _DATETIME64.match(name):
        precision = int(moment.group(1))
        if precision not in _TIME_UNITS:
            raise UnsupportedColumnType(f"column type {clickhouse_type!r}: precision {precision}")
        return pa.timestamp(_TIME_UNITS[precision], tz=moment.group(2) or "UTC")
    if name.startswith("DateTime"):
        return pa.timestamp("s", tz="UTC")
    if name == "Map(String, String)":
        return pa.map_(pa.string(), pa.string())
    raise UnsupportedColumnType(
        f"column type {clickhouse_type!r} has no Arrow type in agentledger.collector.columnar"
    )


def arrow_table(
    rows: Sequence[Sequence[Any]], columns: Sequence[str], types: Sequence[pa.DataType]
) -> pa.Table:
    """``rows`` (each in ``columns`` order) as an Arrow table with the given column types.

    Integers stand for Unix time in the unit of a timestamp column. A decimal column also
    takes floats, through their shortest ``repr`` so that 0.1 stays 0.1, and strings.
    """
    if len(columns) != len(types):
        raise ValueError(f"{len(columns)} columns but {len(types)} types")
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    arrays = [
        _array(name, column, kind)
        for name, column, kind in zip(columns, values, types, strict=True)
    ]
    return pa.Table.from_arrays(arrays, names=list(columns))


def _array(name: str, column: Sequence[Any], kind: pa.DataType) -> pa.Array:
    if pa.types.is_decimal(kind):
        column = [Decimal(str(v)) if type(v) in (float, str) else v for v in column]
    try:
        return pa.array(column, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise ValueError(f"column {name!r} cannot hold its values as {kind}: {exc}") from exc
