"""Two collectors on one store: re-delivered spans and a late verdict count once.

On chDB the two take turns (one process may hold the directory at a time); on a ClickHouse
server (AGENTLEDGER_TEST_CLICKHOUSE_URL) they run side by side and start together, which
also exercises the migration lock. Expected figures are worked out by hand below.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.otlp_payloads import ResourceSpec, SpanSpec, json_request
from tests.conftest import ROOT, Collector, server_database, start_collector

TRACE = "0af7651916cd43dd8448eb211c80319c"
RUN = "run-stateless-1"
SECOND = 1_000_000_000
START = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z
MIGRATION_FILES = sorted(path.name for path in (ROOT / "schemas" / "sql").glob("*.sql"))


def _spans() -> bytes:
    context = {"agentledger.run.id": RUN, "agentledger.workflow": "stateless"}
    run = {**context, "agentledger.span.kind": "run", "agentledger.outcome": "incorrect"}
    calls = [(1_000, 100, 0.25), (2_000, 200, 0.5)]
    specs = [
        SpanSpec(
            "1000000000000001",
            TRACE,
            name="run",
            start_ns=START,
            end_ns=START + 60 * SECOND,
            attributes=run,
        )
    ]
    for index, (inputs, outputs, cost) in enumerate(calls, start=2):
        attributes = {
            **context,
            "agentledger.span.kind": "llm",
            "gen_ai.request.model": "m-test",
            "gen_ai.usage.input_tokens": inputs,
            "gen_ai.usage.output_tokens": outputs,
            "agentledger.cost.usd": cost,
        }
        specs.append(
            SpanSpec(
                f"100000000000000{index}",
                TRACE,
                parent="1000000000000001",
                name="chat m-test",
                start_ns=START + index * SECOND,
                end_ns=START + (index + 1) * SECOND,
                attributes=attributes,
            )
        )
    return json_request([ResourceSpec(specs)])


# A reviewer's verdict an hour after the run ended: it overrides the run's own.
LATE_OUTCOME = [
    {"run_id": RUN, "outcome": "correct", "source": "review", "timestamp": "2026-01-01T01:01:00Z"}
]


def _deliver(collector: Collector) -> None:
    response = httpx.post(
        collector.url + "/v1/traces",
        content=_spans(),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    response = httpx.post(collector.url + "/api/v1/outcomes", json=LATE_OUTCOME, timeout=30)
    assert response.status_code == 200, response.text


def _figures(collector: Collector) -> dict[str, Any]:
    response = collector.get("/api/v1/metrics", group_by="workflow", workflow="stateless")
    assert response.status_code == 200, response.text
    (row,) = response.json()
    return row


def _count(store: str, queries: list[str]) -> list[Any]:
    """First value of each query, read in a process of its own (chDB: one holder at a time)."""
    script = (
        "import json, sys\n"
        "from agentledger.collector.store import Store\n"
        "store = Store(sys.argv[1])\n"
        "print(json.dumps([store.query(q)[0][0] for q in json.loads(sys.argv[2])], default=str))\n"
        "store.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, store, json.dumps(queries)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.fixture(params=["chdb", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "chdb":
        yield str(tmp_path / "store")
        return
    with server_database() as dsn:
        yield dsn


def _check_once(row: dict[str, Any]) -> None:
    assert (row["runs"], row["known_runs"], row["correct_runs"]) == (1, 1, 1)
    assert row["calls"] == 2
    assert row["input_tokens"] == 1_000 + 2_000
    assert row["output_tokens"] == 100 + 200
    assert Decimal(str(row["cost_usd"])) == Decimal("0.75")
    assert Decimal(str(row["cost_per_correct_outcome_usd"])) == Decimal("0.75")


def test_two_collectors_count_redelivered_spans_and_a_late_verdict_once(
    store: str, tmp_path: Path
) -> None:
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    on_server = store.startswith("http")
    dsn = store if on_server else None

    if on_server:
        # Side by side, started together: both may race for the migrations.
        with ExitStack() as stack:
            collectors = [start_collector(tmp_path / "unused", log, store=dsn) for log in logs]
            for running in collectors:
                stack.callback(running.stop)
            for running in collectors:
                _deliver(running)
            for running in collectors:
                _check_once(_figures(running))
    else:
        # Taking turns on one directory, each with a spool of its own.
        for log in logs:
            running = start_collector(
                Path(store),
                log,
                store=None,
                env={"AGENTLEDGER_SPOOL_DIR": str(log.with_suffix(".spool"))},
            )
            try:
                _deliver(running)
                _check_once(_figures(running))
            finally:
                running.stop()

    raw_spans, final_spans, raw_outcomes, final_outcomes, ledger_rows = _count(
        store,
        [
            f"SELECT count() FROM spans WHERE run_id = '{RUN}'",
            f"SELECT count() FROM spans FINAL WHERE run_id = '{RUN}'",
            f"SELECT count() FROM outcomes WHERE run_id = '{RUN}'",
            f"SELECT count() FROM outcomes FINAL WHERE run_id = '{RUN}'",
            "SELECT count() FROM schema_migrations FINAL",
        ],
    )
    # Both deliveries reached the store (unless a merge already folded them) ...
    assert raw_spans in (3, 6) and raw_outcomes in (2, 4)
    # ... and read through FINAL each span and each verdict (run's own, reviewer's) is one row.
    assert (final_spans, final_outcomes) == (3, 2)
    assert ledger_rows == len(MIGRATION_FILES)

    applied = [log.read_text().count("migration applied") for log in logs]
    if on_server:
        # Racing collectors may both apply a migration (idempotently); the ledger holds one.
        assert sum(applied) >= len(MIGRATION_FILES)
    else:
        assert applied == [len(MIGRATION_FILES), 0]
        (raw_ledger,) = _count(store, ["SELECT count() FROM schema_migrations"])
        assert raw_ledger == len(MIGRATION_FILES)
