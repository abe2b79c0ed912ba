"""The single-node and cluster forms of the DDL, checked by ClickHouse's own parser."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from agentledger.schemas.cluster import (
    ClusterLayout,
    ClusterRenderer,
    ClusterSchemaError,
    ledger_statements,
    migration_statements,
    order_key,
    parse_shard_keys,
    schema_ddl,
    sharded_names,
)
from agentledger.schemas.sql import _split, migrations
from tests.schemas.clickhouse_parser import assert_all_parse, parse_all

LAYOUTS = {
    "named": ClusterLayout("agentledger"),
    "macro": ClusterLayout("{cluster}"),
    "custom-keys": ClusterLayout(
        "prod",
        shard_key="cityHash64(project)",
        shard_keys={"spans": "xxHash64(trace_id)"},
    ),
}


def _all_single_node() -> list[str]:
    statements = ledger_statements(None)
    for migration in migrations():
        statements += migration_statements(migration, None)
    return statements


def _all_cluster(layout: ClusterLayout) -> list[str]:
    renderer = ClusterRenderer(layout)
    statements = ledger_statements(layout)
    for migration in migrations():
        statements += migration_statements(migration, layout, renderer)
    return statements


def test_every_single_node_statement_parses() -> None:
    statements = _all_single_node()
    # The ledger and its lock, and at least the spans and outcomes tables.
    assert len(statements) >= 4
    assert_all_parse(statements)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_cluster_statement_parses_and_runs_on_the_cluster(name: str) -> None:
    layout = LAYOUTS[name]
    statements = _all_cluster(layout)
    formatted = assert_all_parse(statements)
    for text in formatted:
        assert "ON CLUSTER" in text, text[:200]


def test_each_table_becomes_a_replicated_local_table_and_a_distributed_one() -> None:
    formatted = assert_all_parse(_all_cluster(LAYOUTS["named"]))
    creates = {}
    for text in formatted:
        match = re.match(r"CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER agentledger", text)
        if match:
            creates[match.group(1)] = " ".join(text.split())
    for table in ("spans", "outcomes"):
        local = creates[f"{table}_local"]
        assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/" in local
        assert "'{replica}', ingested_at)" in local
        front = creates[table]
        assert f"AS {table}_local" in front
        assert f"Distributed('agentledger', currentDatabase(), '{table}_local'" in front
    # Sharded by the de-duplication key without its last column, so copies meet on a shard.
    assert creates["spans"].endswith("cityHash64(project, trace_id))")
    assert creates["outcomes"].endswith("cityHash64(project, run_id))")
    # The ledger is replicated over the whole cluster, not sharded.
    assert "'/clickhouse/tables/all/{database}/{table}'" in creates["schema_migrations"]
    assert "schema_migrations_local" not in creates


def test_custom_shard_keys_go_to_their_tables() -> None:
    formatted = " ".join(assert_all_parse(_all_cluster(LAYOUTS["custom-keys"])))
    flat = " ".join(formatted.split())
    assert "'spans_local', xxHash64(trace_id))" in flat
    assert "'outcomes_local', cityHash64(project))" in flat


SYNTHETIC = [
    (
        "CREATE TABLE IF NOT EXISTS daily (project String, day Date, tokens UInt64) "
        "ENGINE = SummingMergeTree ORDER BY (project, day)"
    ),
    (
        "CREATE MATERIALIZED VIEW IF NOT EXISTS daily_mv TO daily AS SELECT project, "
        "toDate(start_time) AS day, sum(input_tokens) AS tokens FROM spans "
        "LEFT JOIN outcomes USING (project, run_id) GROUP BY project, day"
    ),
    (
        "CREATE MATERIALIZED VIEW IF NOT EXISTS hourly ENGINE = AggregatingMergeTree "
        "ORDER BY (project, hour) AS SELECT project, toStartOfHour(start_time) AS hour, "
        "countState() AS calls FROM spans GROUP BY project, hour"
    ),
    (
        "CREATE OR REPLACE VIEW spend AS SELECT project, sum(cost_usd) AS usd FROM spans FINAL "
        "GROUP BY project"
    ),
    (
        "ALTER TABLE spans ADD COLUMN IF NOT EXISTS region LowCardinality(String), "
        "ADD COLUMN IF NOT EXISTS zone String"
    ),
    "ALTER TABLE spans ADD INDEX IF NOT EXISTS by_model model TYPE set(100) GRANULARITY 4",
    "DROP VIEW IF EXISTS spend",
    "DROP TABLE IF EXISTS daily",
]


def test_views_alters_and_drops_get_their_cluster_form() -> None:
    renderer = ClusterRenderer(ClusterLayout("c"), sharded={"spans", "outcomes", "daily", "hourly"})
    rendered = [renderer.render(statement) for statement in SYNTHETIC]
    flat = [[" ".join(text.split()) for text in assert_all_parse(group)] for group in rendered]

    assert flat[0][0].startswith("CREATE TABLE IF NOT EXISTS daily_local ON CLUSTER c")
    assert "ReplicatedSummingMergeTree(" in flat[0][0]
    # The view fires on the local tables and writes the local target.
    assert flat[1] == [
        (
            "CREATE MATERIALIZED VIEW IF NOT EXISTS daily_mv ON CLUSTER c TO daily_local AS "
            "SELECT project, toDate(start_time) AS day, sum(input_tokens) AS tokens "
            "FROM spans_local LEFT JOIN outcomes_local USING (project, run_id) "
            "GROUP BY project, day"
        )
    ]
    # A view with an inner engine is a local table of its own, behind a Distributed one.
    assert flat[2][0].startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS hourly_local ON CLUSTER c")
    assert (
        "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/hourly_local'"
        in flat[2][0]
    )
    assert "FROM spans_local" in flat[2][0]
    assert flat[2][1].startswith("CREATE TABLE IF NOT EXISTS hourly ON CLUSTER c AS hourly_local")
    assert flat[2][1].endswith("cityHash64(project))")
    # A plain view reads the Distributed tables.
    assert flat[3][0].startswith("CREATE OR REPLACE VIEW spend ON CLUSTER c AS SELECT")
    assert "FROM spans FINAL" in flat[3][0]
    # Column changes reach the Distributed table too; an index only the local one.
    assert [text.split(" (ADD")[0] for text in flat[4]] == [
        "ALTER TABLE spans_local ON CLUSTER c",
        "ALTER TABLE spans ON CLUSTER c",
    ]
    assert len(flat[5]) == 1 and flat[5][0].startswith("ALTER TABLE spans_local ON CLUSTER c")
    assert flat[6] == ["DROP VIEW IF EXISTS spend ON CLUSTER c"]
    assert flat[7] == [
        "DROP TABLE IF EXISTS daily ON CLUSTER c",
        "DROP TABLE IF EXISTS daily_local ON CLUSTER c",
    ]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("rand()", "must read only columns"),
        ("cityHash64(model)", r"found \['model'\]"),
        ("cityHash64(project, run_id, outcome_key, span_id)", "span_id"),
    ],
)
def test_shard_keys_that_could_split_duplicates_are_refused(key: str, message: str) -> None:
    renderer = ClusterRenderer(ClusterLayout("c", shard_key=key))
    with pytest.raises(ClusterSchemaError, match=message):
        for migration in migrations():
            migration_statements(migration, renderer.layout, renderer)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = Memory", "engine 'Memory'"),
        ("INSERT INTO spans SELECT * FROM spans", "no cluster form"),
        (
            "CREATE TABLE IF NOT EXISTS t ENGINE = MergeTree ORDER BY x AS SELECT 1 AS x",
            "AS SELECT",
        ),
    ],
)
def test_statements_without_a_cluster_form_are_refused(statement: str, message: str) -> None:
    with pytest.raises(ClusterSchemaError, match=message):
        ClusterRenderer(ClusterLayout("c"), sharded={"t", "spans"}).render(statement)


@pytest.mark.parametrize("name", ["", "a b", "x'; DROP", "c;"])
def test_invalid_cluster_names_are_refused(name: str) -> None:
    with pytest.raises(ClusterSchemaError, match="cluster name"):
        ClusterLayout(name)


def test_shard_key_values_split_into_a_default_and_per_table_keys() -> None:
    assert parse_shard_keys(["cityHash64(project)", "spans=xxHash64(trace_id)"]) == (
        "cityHash64(project)",
        {"spans": "xxHash64(trace_id)"},
    )
    # An expression comparing with == is not a table prefix.
    assert parse_shard_keys(["a==b"]) == ("a==b", {})


def test_order_key_reads_the_columns_of_the_key() -> None:
    assert order_key("CREATE TABLE t (a Int8) ENGINE = MergeTree ORDER BY (a, b, c)") == [
        "a",
        "b",
        "c",
    ]
    assert order_key("CREATE TABLE t (a Int8) ENGINE = MergeTree ORDER BY a SETTINGS x = 1") == [
        "a"
    ]


def test_every_migration_statement_is_idempotent() -> None:
    # Two collectors may apply a migration at the same time (see collector/store.py).
    for migration in migrations():
        for statement in migration.statements:
            head = " ".join(statement.split()[:8]).upper()
            ok = (
                (head.startswith("CREATE") and ("IF NOT EXISTS" in head or "OR REPLACE" in head))
                or (head.startswith("DROP") and "IF EXISTS" in head)
                or (head.startswith("ALTER") and " IF " in " ".join(statement.split()).upper())
            )
            assert ok, f"{migration.name}: statement is not idempotent: {head!r}"


def test_every_created_table_is_sharded_by_default() -> None:
    names = sharded_names(migrations())
    assert {"spans", "outcomes"} <= names
    assert "schema_migrations" not in names


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--cluster", "agentledger"],
        ["--cluster", "{cluster}", "--shard-key", "cityHash64(project)"],
    ],
)
def test_schema_command_prints_ddl_that_parses(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentledger.cli", "schema", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == schema_ddl(
        ClusterLayout(args[1], shard_key=args[3] if len(args) > 2 else None) if args else None
    )
    statements = _split(done.stdout)
    count = len(ledger_statements(None)) + sum(len(m.statements) + 1 for m in migrations())
    if args:
        assert len(statements) > count
    else:
        assert len(statements) == count
    assert_all_parse(statements)


def test_schema_command_refuses_a_shard_key_without_a_cluster() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentledger.cli", "schema", "--shard-key", "cityHash64(project)"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "--shard-key and --database need --cluster" in done.stderr


def test_the_parser_does_refuse_broken_sql() -> None:
    # Guards the helper above: a parser that accepted anything would prove nothing.
    ((ok, message),) = parse_all(["CREATE TABLE t (x UInt8 ENGINE = MergeTree ORDER BY x"])
    assert not ok and "Syntax error" in message


def test_an_unsharded_view_with_an_inner_engine_is_replicated_over_the_cluster() -> None:
    renderer = ClusterRenderer(ClusterLayout("c"), sharded={"spans"})
    (statement,) = renderer.render(SYNTHETIC[2])
    (flat,) = [" ".join(text.split()) for text in assert_all_parse([statement])]
    assert flat.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS hourly ON CLUSTER c")
    assert "ReplicatedAggregatingMergeTree('/clickhouse/tables/all/{database}/hourly'" in flat
    assert "FROM spans_local" in flat


def test_a_named_database_replaces_current_database_in_distributed_tables() -> None:
    layout = ClusterLayout("c").in_database("agent'ledger")
    statements = _all_cluster(layout)
    fronts = [s for s in statements if "ENGINE = Distributed(" in s]
    assert fronts and all("Distributed('c', 'agent\\'ledger', '" in s for s in fronts)
    assert_all_parse(fronts)


def test_schema_command_names_the_database_when_asked() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentledger.cli", "schema", "--cluster", "c", "--database", "al"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Distributed('c', 'al', 'spans_local', cityHash64(project, trace_id))" in done.stdout
    assert "currentDatabase()" not in done.stdout


def test_schema_command_works_without_the_server_extra() -> None:
    # Hide the server dependencies as a base install would lack them.
    code = (
        "import sys\n"
        "class Missing:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'fastapi', 'uvicorn', 'clickhouse_connect', 'chdb',\n"
        "                                  'pydantic_settings', 'dash'}:\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Missing())\n"
        "from agentledger.cli import main\n"
        "sys.exit(main(['schema', '--cluster', 'agentledger']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == schema_ddl(ClusterLayout("agentledger"))
