"""Read-only ad-hoc SQL: what is refused before it runs, what ClickHouse refuses, and the
``POST /api/v1/sql`` route."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentledger.collector import adhoc
from agentledger.collector.adhoc import (
    AdhocSqlError,
    NotReadOnlyError,
    check_read_only,
    run_read_only,
    sql_router,
)
from agentledger.collector.store import Store
from tests.collector.spanrows import insert_spans, open_store, span

PROJECT = "adhoc"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    for opened in open_store(tmp_path_factory.mktemp("adhoc")):
        insert_spans(
            opened,
            span("c1", model="m", input_tokens=10, cost_usd="0.25", project=PROJECT),
            span("c2", model="m", input_tokens=20, cost_usd="0.5", project=PROJECT, start_time=1),
        )
        yield opened


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(sql_router(store))
    with TestClient(app) as test_client:
        yield test_client


def spans_count(store: Store) -> int:
    return int(store.query("SELECT count() FROM spans")[0][0])


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("INSERT INTO outcomes (run_id) VALUES ('x')", "starts with 'INSERT'"),
        ("  drop table spans", "starts with 'DROP'"),
        ("ALTER TABLE spans DELETE WHERE 1", "starts with 'ALTER'"),
        ("TRUNCATE TABLE spans", "starts with 'TRUNCATE'"),
        ("SET readonly = 0", "starts with 'SET'"),
        ("SELECT 1; DROP TABLE spans", "several statements"),
        ("SELECT 1 INTO OUTFILE '/tmp/x.tsv'", "INTO OUTFILE"),
        ("-- just a comment", "empty"),
        ("", "empty"),
    ],
)
def test_statements_other_than_one_select_are_refused(sql: str, match: str) -> None:
    with pytest.raises(NotReadOnlyError, match=match):
        check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1;",
        "with 2 AS x SELECT x",
        "(SELECT 1)",
        "SELECT 'a; DROP TABLE spans' AS s",
        "-- runs per workflow\nSELECT 1",
    ],
)
def test_one_select_passes_the_check(sql: str) -> None:
    assert check_read_only(sql).rstrip().endswith(("1", "x", "s", ")"))


def test_a_query_returns_columns_types_and_exact_decimals(store: Store) -> None:
    result = run_read_only(
        store,
        "SELECT model, count() AS calls, sum(cost_usd) AS cost FROM llm_calls"
        f" WHERE project = '{PROJECT}' GROUP BY model",
    )
    assert result.columns == ["model", "calls", "cost"]
    assert result.types[1] == "UInt64"
    assert result.rows == [["m", 2, Decimal("0.75")]]
    assert result.truncated is False


def test_rows_past_the_limit_are_cut_and_marked(store: Store) -> None:
    result = run_read_only(store, "SELECT number FROM system.numbers LIMIT 50", max_rows=3)
    assert result.rows == [[0], [1], [2]]
    assert result.truncated is True


def test_an_empty_answer_still_names_its_columns(store: Store) -> None:
    result = run_read_only(store, "SELECT run_id, cost_usd FROM runs WHERE project = 'none'")
    assert result.columns == ["run_id", "cost_usd"]
    assert result.rows == []


@pytest.mark.parametrize(
    "sql",
    [
        # Each passes the text check; ClickHouse's readonly = 1 refuses it.
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/x', 'LineAsString')",
        "SELECT * FROM file('/etc/hostname', 'LineAsString') SETTINGS readonly = 0",
    ],
)
def test_clickhouse_readonly_refuses_what_the_text_check_lets_through(
    store: Store, sql: str
) -> None:
    before = spans_count(store)
    with pytest.raises(AdhocSqlError, match="readonly"):
        run_read_only(store, sql)
    assert spans_count(store) == before


def test_a_setting_in_the_query_cannot_lift_readonly(store: Store) -> None:
    sql = "SELECT getSetting('readonly') AS ro SETTINGS readonly = 0"
    assert run_read_only(store, sql).rows == [[1]]


def test_the_session_is_writable_after_a_read_only_query(store: Store) -> None:
    # readonly = 1 rides on the query only; the writer sharing the chDB session must not
    # inherit it.
    run_read_only(store, "SELECT 1")
    insert_spans(store, span("c9", model="m", input_tokens=1, project="adhoc-after"))
    assert store.query("SELECT getSetting('readonly')")[0][0] == 0
    assert store.query("SELECT count() FROM spans WHERE project = 'adhoc-after'")[0][0] == 1


def test_the_route_answers_rows_as_json(client: TestClient) -> None:
    answer = client.post(
        "/api/v1/sql",
        json={"sql": f"SELECT sum(cost_usd) AS cost FROM llm_calls WHERE project = '{PROJECT}'"},
    )
    assert answer.status_code == 200
    assert (
        answer.text == '{"columns":["cost"],"types":["Nullable(Decimal(38, 12))"],'
        '"rows":[[0.75]],"truncated":false}'
    )


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("INSERT INTO spans (project) VALUES ('x')", "only SELECT and WITH"),
        ("DROP TABLE outcomes", "only SELECT and WITH"),
        ("SELECT * FROM file('/etc/hostname', 'LineAsString')", "readonly"),
    ],
)
def test_the_route_refuses_writes(client: TestClient, store: Store, sql: str, match: str) -> None:
    before = spans_count(store)
    answer = client.post("/api/v1/sql", json={"sql": sql})
    assert answer.status_code == 400
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "sql"] and match in error["msg"]
    assert spans_count(store) == before
    assert store.query("EXISTS TABLE outcomes")[0][0] == 1


def test_the_route_reports_a_bad_query(client: TestClient) -> None:
    answer = client.post("/api/v1/sql", json={"sql": "SELECT no_such_column FROM runs"})
    assert answer.status_code == 400
    assert "no_such_column" in answer.json()["detail"][0]["msg"]


def test_a_runaway_query_is_stopped_at_the_time_limit(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(adhoc, "MAX_SECONDS", 1)
    started = time.monotonic()
    with pytest.raises(AdhocSqlError, match="TIMEOUT_EXCEEDED|Timeout exceeded"):
        run_read_only(store, "SELECT sum(cityHash64(number)) FROM numbers(100000000000)")
    # Stopped near the limit, not after the minutes the sum would take.
    assert time.monotonic() - started < 30
    # The store serves the next query as before.
    assert run_read_only(store, "SELECT 1").rows == [[1]]
