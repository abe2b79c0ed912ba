"""``agentledger sql``: a table printed from the store directly or through a running collector,
and writes refused both ways."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from agentledger.schemas.api import SqlResult
from agentledger.sql_console import format_table
from tests.collector.spanrows import insert_outcome, insert_spans, open_store, span
from tests.conftest import Collector, start_collector


def agentledger(*args: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTLEDGER_ENDPOINT": endpoint or "http://127.0.0.1:9"}
    return subprocess.run(
        [sys.executable, "-m", "agentledger.cli", "sql", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_a_table_aligns_numbers_right_and_counts_rows() -> None:
    result = SqlResult(
        columns=["workflow", "runs", "cost_usd"],
        types=["String", "UInt64", "Nullable(Decimal(38, 12))"],
        rows=[["support", 12, Decimal("0.250000000000")], ["triage", 3, None]],
        truncated=False,
    )
    assert format_table(result).splitlines() == [
        "workflow  runs  cost_usd",
        "--------  ----  --------",
        "support     12      0.25",
        "triage       3      NULL",
        "(2 rows)",
    ]


def test_a_cut_answer_says_so() -> None:
    result = SqlResult(columns=["n"], types=["UInt64"], rows=[[1]], truncated=True)
    assert format_table(result).splitlines()[-1] == (
        "(1 row (truncated: add a LIMIT or raise --max-rows))"
    )


@pytest.fixture(scope="module")
def filled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with two runs, closed so that a command can open it."""
    path = tmp_path_factory.mktemp("sqlcli") / "store"
    for store in open_store(path):
        insert_spans(
            store,
            span("run1", kind="run", workflow="support"),
            span("c1", model="m", input_tokens=100, output_tokens=10, cost_usd="0.125"),
            span(
                "c2",
                run_id="r2",
                trace_id="t2",
                model="m",
                input_tokens=5,
                cost_usd="0.5",
                workflow="triage",
                start_time=60,
            ),
        )
        insert_outcome(store, "r1", "correct")
    return path


def test_the_command_reads_a_store_directly(filled_dir: Path) -> None:
    done = agentledger(
        "SELECT run_id, workflow, outcome, cost_usd FROM runs ORDER BY run_id",
        "--store",
        str(filled_dir),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "run_id  workflow  outcome  cost_usd",
        "------  --------  -------  --------",
        "r1      support   correct     0.125",
        "r2      triage    NULL          0.5",
        "(2 rows)",
    ]


@pytest.mark.parametrize(
    "sql", ["DELETE FROM spans WHERE 1", "SELECT * FROM file('/etc/hostname', 'LineAsString')"]
)
def test_the_command_refuses_writes_on_a_store(filled_dir: Path, sql: str) -> None:
    done = agentledger(sql, "--store", str(filled_dir))
    assert done.returncode == 1
    assert done.stderr.startswith("agentledger sql: ")
    count = agentledger("SELECT count() AS n FROM spans", "--store", str(filled_dir))
    assert count.stdout.splitlines()[2].strip() == "3"


def test_a_missing_store_is_named(tmp_path: Path) -> None:
    done = agentledger("SELECT 1", "--store", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "no store at" in done.stderr and "nowhere" in done.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    base = tmp_path_factory.mktemp("sqlserve")
    running = start_collector(base / "store", base / "serve.log")
    verdict = {"run_id": "r-api", "outcome": "correct", "timestamp": "2026-03-02T09:00:00Z"}
    assert httpx.post(running.url + "/api/v1/outcomes", json=[verdict]).status_code == 200
    yield running
    running.stop()


def test_the_command_goes_through_the_collector_that_holds_the_store(served: Collector) -> None:
    # No --endpoint: the store is locked by the collector, so the command asks it.
    done = agentledger(
        "SELECT run_id, outcome, decided_at FROM outcomes",
        "--store",
        str(served.store_dir),
        endpoint=served.url,
    )
    assert done.returncode == 0, done.stderr
    decided = datetime(2026, 3, 2, 9, tzinfo=UTC).isoformat()
    assert done.stdout.splitlines()[2].split() == ["r-api", "correct", decided]


def test_the_command_refuses_writes_through_the_collector(served: Collector) -> None:
    done = agentledger("TRUNCATE TABLE outcomes", "--endpoint", served.url)
    assert done.returncode == 1
    assert "only SELECT and WITH" in done.stderr
    done = agentledger(
        "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')", "--endpoint", served.url
    )
    assert done.returncode == 1 and "readonly" in done.stderr.lower()
    count = agentledger("SELECT count() AS n FROM outcomes", "--endpoint", served.url)
    assert count.stdout.splitlines()[2].strip() == "1"


def test_an_unreachable_collector_is_named() -> None:
    done = agentledger("SELECT 1", "--endpoint", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert "cannot reach the collector at 'http://127.0.0.1:9/api/v1/sql'" in done.stderr


def test_a_store_held_by_a_collector_elsewhere_names_the_way_out(tmp_path: Path) -> None:
    import fcntl

    store = tmp_path / "held"
    store.mkdir()
    # What a running chDB holds on its directory: an exclusive lock on `status`.
    with (store / "status").open("wb") as status:
        fcntl.flock(status, fcntl.LOCK_EX)
        done = agentledger("--store", str(store), "SELECT 1", endpoint="http://127.0.0.1:9")
    assert done.returncode == 2
    assert "held by a running collector" in done.stderr
    assert "'http://127.0.0.1:9'" in done.stderr and "--endpoint" in done.stderr
