"""Rows inserted as Arrow blocks come back from ClickHouse exactly as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from agentledger.collector import columnar
from agentledger.collector.store import Store, StoreError
from tests.conftest import ROOT

# Every column type of a table of ours, with a value of it, a null where it may hold one.
_COLUMNS = (
    ("tag", "LowCardinality(String)", "tier-a", "tier-a"),
    ("trace", "FixedString(32)", "ab" * 16, b"ab" * 16),
    ("note", "String", "naïve ☃", "naïve ☃"),
    ("calls", "UInt64", 2**64 - 1, 2**64 - 1),
    ("attempt", "UInt32", 7, 7),
    ("flag8", "UInt8", 1, 1),
    ("accepted", "Bool", True, True),
    ("maybe_tokens", "Nullable(UInt64)", None, None),
    ("maybe_attempt", "Nullable(UInt32)", 3, 3),
    ("maybe_bool", "Nullable(Bool)", None, None),
    ("score", "Nullable(Float64)", 0.25, 0.25),
    ("cost", "Nullable(Decimal(18, 12))", Decimal("0.000001234567"), Decimal("0.000001234567")),
    # A float bound for a decimal column keeps its shortest form: 0.1, not 0.1000000000000000055.
    ("budget", "Nullable(Decimal(18, 9))", 0.1, Decimal("0.1")),
    ("spend", "Decimal(38, 12)", "123456.5", Decimal("123456.5")),
    # Integers are nanoseconds since the epoch; datetimes are taken as they are.
    (
        "started",
        "DateTime64(9, 'UTC')",
        1_785_000_000_123_456_789,
        datetime(2026, 7, 25, 17, 20, 0, 123456),
    ),
    (
        "through",
        "DateTime64(9, 'UTC')",
        datetime(2026, 12, 4, 8, 0, tzinfo=UTC),
        datetime(2026, 12, 4, 8, 0),  # the driver reads UTC columns back as naive UTC
    ),
    ("day", "Date", date(2026, 12, 4), date(2026, 12, 4)),
    ("attributes", "Map(String, String)", {"k": "v", "e": ""}, {"k": "v", "e": ""}),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store(f"chdb://{tmp_path_factory.mktemp('columnar')}")
    body = ", ".join(f"{name} {kind}" for name, kind, _, _ in _COLUMNS)
    opened.command(f"CREATE TABLE every_type ({body}) ENGINE = MergeTree ORDER BY tuple()")
    yield opened
    opened.close()


def test_every_column_type_round_trips(store: Store) -> None:
    names = [name for name, _, _, _ in _COLUMNS]
    store.insert("every_type", [[value for _, _, value, _ in _COLUMNS]], names)

    (row,) = store.query(f"SELECT {', '.join(names)} FROM every_type")
    got = dict(zip(names, row, strict=True))
    for name, _, _, expected in _COLUMNS:
        if name == "started":  # Python datetimes stop at microseconds; compare the nanoseconds
            continue
        assert got[name] == expected, name
    (nanos,) = store.query("SELECT toUnixTimestamp64Nano(started) FROM every_type")[0]
    assert nanos == 1_785_000_000_123_456_789


def test_omitted_columns_get_their_defaults(store: Store) -> None:
    store.command(
        "CREATE TABLE with_default (name String, at DateTime64(9, 'UTC') DEFAULT now64(9), "
        "n UInt64 DEFAULT 41 + 1) ENGINE = MergeTree ORDER BY name"
    )
    store.insert("with_default", [["a"], ["b"]], ["name"])

    rows = store.query("SELECT name, n, at > now64(9) - INTERVAL 1 MINUTE FROM with_default")
    assert sorted(rows) == [("a", 42, True), ("b", 42, True)]


def test_a_value_the_column_cannot_hold_is_named(store: Store) -> None:
    with pytest.raises(ValueError, match=r"column 'calls' cannot hold its values as uint64"):
        store.insert("every_type", [[-1]], ["calls"])


def test_an_unknown_column_is_named(store: Store) -> None:
    with pytest.raises(StoreError, match=r"table 'every_type' has no column 'nope'"):
        store.insert("every_type", [["x"]], ["nope"])


@pytest.mark.parametrize(
    ("clickhouse_type", "expected"),
    [
        ("LowCardinality(String)", pa.string()),
        ("LowCardinality(Nullable(String))", pa.string()),
        ("Nullable(Decimal(18, 12))", pa.decimal128(18, 12)),
        ("Decimal(76, 10)", pa.decimal256(76, 10)),
        ("DateTime64(3, 'Europe/Paris')", pa.timestamp("ms", tz="Europe/Paris")),
        ("DateTime64(6)", pa.timestamp("us", tz="UTC")),
        ("Map(String, String)", pa.map_(pa.string(), pa.string())),
    ],
)
def test_arrow_type_of_a_clickhouse_type(clickhouse_type: str, expected: pa.DataType) -> None:
    assert columnar.arrow_type(clickhouse_type) == expected


def test_every_column_type_of_the_schema_has_an_arrow_type() -> None:
    # Column definitions of the DDL files: "    name   Type," inside CREATE TABLE bodies.
    found = set()
    for path in (ROOT / "schemas" / "sql").glob("*.sql"):
        for match in re.finditer(
            r"^\s{4}[a-z_0-9]+\s+([A-Z][^\n]*?)(?:\s+DEFAULT .*)?,?$",
            path.read_text(),
            re.MULTILINE,
        ):
            found.add(match.group(1).rstrip(","))
    kinds = {kind for kind in found if not kind.startswith(("OR ", "AS "))}
    assert "Map(String, String)" in kinds and "Nullable(Decimal(18, 12))" in kinds
    for kind in kinds:
        columnar.arrow_type(kind)


def test_an_unsupported_type_is_refused_by_name() -> None:
    with pytest.raises(columnar.UnsupportedColumnType, match=r"'Array\(String\)'"):
        columnar.arrow_type("Array(String)")
