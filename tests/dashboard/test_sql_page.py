"""The dashboard's SQL page over a real chDB store, through the reader the collector hands
to the dashboard: writes are refused as ``POST /api/v1/sql`` refuses them, a SELECT shows
the store's values, and once keys exist only an admin key of every project may run SQL,
which the server enforces whatever the page showed."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentledger.collector import auth
from agentledger.collector.queries import StoreReader
from agentledger.collector.server import create_app
from agentledger.collector.settings import CollectorSettings
from agentledger.collector.store import Store
from agentledger.dashboard import csv_export, sql_page
from agentledger.schemas.analysis import SqlForbiddenError
from tests.collector.spanrows import insert_spans, open_store, span
from tests.dashboard.fakes import find_all, texts

READ_KEY = "read-key-of-every-project-01"
ADMIN_A = "admin-key-of-project-a-00001"
ADMIN_ALL = "admin-key-of-every-project-1"
KEYS_TOML = f"""
[[keys]]
name = "read-all"
key = "{READ_KEY}"
project = "*"
role = "read"

[[keys]]
name = "admin-a"
key = "{ADMIN_A}"
project = "a"
role = "admin"

[[keys]]
name = "admin-all"
key = "{ADMIN_ALL}"
project = "*"
role = "admin"
"""
# Two priced calls on model m in run r1 and one on model n in run r2.
COSTS = {"m": [Decimal("0.25"), Decimal("0.5")], "n": [Decimal("0.125")]}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    for opened in open_store(tmp_path_factory.mktemp("sql-page")):
        insert_spans(
            opened,
            span("c1", model="m", input_tokens=10, cost_usd="0.25", workflow="w"),
            span("c2", model="m", input_tokens=20, cost_usd="0.5", workflow="w", start_time=1),
            span("c3", model="n", input_tokens=5, cost_usd="0.125", workflow="w", run_id="r2"),
        )
        yield opened


@pytest.fixture(scope="module")
def reader(store: Store) -> Any:
    # What the collector hands to the dashboard: the store reader, scoped per request.
    return auth.scoped_reader(StoreReader(store))


def spans_count(store: Store) -> int:
    return int(store.query("SELECT count() FROM spans")[0][0])


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("INSERT INTO spans (span_id) VALUES ('x')", "starts with 'INSERT'"),
        ("ALTER TABLE spans DELETE WHERE 1", "starts with 'ALTER'"),
        ("DROP TABLE spans", "starts with 'DROP'"),
        ("SELECT 1; DROP TABLE spans", "several statements"),
    ],
)
def test_writes_are_refused_and_nothing_runs(
    reader: Any, store: Store, sql: str, named: str
) -> None:
    before = spans_count(store)

    shown = texts(sql_page.run(reader, sql))

    assert sql_page.REFUSED_TITLE in shown
    assert any(named in text for text in shown)
    assert spans_count(store) == before


def test_invalid_sql_says_what_clickhouse_said(reader: Any) -> None:
    shown = texts(sql_page.run(reader, "SELECT no_such_column FROM llm_calls"))

    assert sql_page.FAILED_TITLE in shown
    assert any("no_such_column" in text for text in shown)


def test_an_empty_query_is_refused_before_it_is_sent(reader: Any) -> None:
    assert sql_page.REFUSED_TITLE in texts(sql_page.run(reader, "   "))


def table_of(component: Any) -> list[list[str]]:
    """The header and the rows of the first table, as the browser would show them."""
    (table,) = find_all(component, lambda node: type(node).__name__ == "Table")
    head, body = table.children
    header = [cell.children for cell in head.children.children]
    rows = [[" ".join(texts(cell)) for cell in line.children] for line in body.children]
    return [header, *rows]


def test_a_select_shows_the_stores_values_and_offers_them_as_csv(reader: Any) -> None:
    sql = (
        "SELECT model, count() AS calls, sum(cost_usd) AS cost_usd "
        "FROM llm_calls GROUP BY model ORDER BY model"
    )

    shown = sql_page.run(reader, sql)

    header, *rows = table_of(shown)
    assert header == ["model", "calls", "cost_usd"]
    assert [(r[0], int(r[1]), Decimal(r[2])) for r in rows] == [
        (model, len(costs), sum(costs)) for model, costs in sorted(COSTS.items())
    ]
    (store,) = find_all(
        shown, lambda node: getattr(node, "id", None) == {"type": csv_export.DATA, "table": "sql"}
    )
    csv_text = csv_export.to_csv(store.data)
    assert csv_text.splitlines()[0] == "model,calls,cost_usd"
    assert Decimal(csv_text.splitlines()[1].split(",")[2]) == sum(COSTS["m"])
    assert "2 rows" in texts(shown)


def test_a_repeated_column_name_keeps_both_columns_in_the_csv() -> None:
    assert sql_page.unique_names(["a", "b", "a", "a"]) == ["a", "b", "a_2", "a_3"]


def test_a_nan_from_clickhouse_shows_as_undefined_not_nan(reader: Any) -> None:
    shown = sql_page.run(reader, "SELECT 0 / 0 AS ratio")

    _, line = table_of(shown)
    assert line == ["—"]
    (store,) = find_all(
        shown, lambda node: getattr(node, "id", None) == {"type": csv_export.DATA, "table": "sql"}
    )
    assert store.data == [{"ratio": None}]


@pytest.mark.parametrize(
    ("principal", "allowed"),
    [
        (auth.OPEN, True),  # no keys configured
        (auth.Principal("admin-all", "*", "admin"), True),
        (auth.Principal("admin-a", "a", "admin"), False),
        (auth.Principal("read-all", "*", "read"), False),
    ],
    ids=["no-keys", "admin-of-every-project", "admin-of-one-project", "read-key"],
)
def test_only_an_admin_of_every_project_gets_the_form(
    reader: Any, principal: auth.Principal, allowed: bool
) -> None:
    with auth.acting_as(principal):
        page = sql_page.page(reader)
        answer = sql_page.run(reader, "SELECT count() FROM spans")

    has_form = bool(find_all(page, lambda node: getattr(node, "id", None) == sql_page.TEXT))
    assert has_form is allowed
    assert (sql_page.FORBIDDEN_TITLE in texts(page)) is not allowed
    assert (sql_page.FORBIDDEN_TITLE in texts(answer)) is not allowed


def test_the_reader_itself_refuses_a_viewer_who_may_not_run_sql(reader: Any) -> None:
    with (
        auth.acting_as(auth.Principal("admin-a", "a", "admin")),
        pytest.raises(SqlForbiddenError, match="admin' key of project '\\*'"),
    ):
        reader.sql("SELECT 1")


# --- through the collector, with keys -------------------------------------------------------


@pytest.fixture(scope="module")
def client(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    base = tmp_path_factory.mktemp("sql-page-keys")
    keys: Path = base / "keys.toml"
    keys.write_text(KEYS_TOML)
    settings = CollectorSettings(
        keys_file=keys, spool_dir=base / "spool", session_secret="a-test-secret-of-enough-length"
    )
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as c:
        yield c


def run_callback(client: TestClient, key: str, sql: str) -> str:
    """Press the page's run button as the browser does, bypassing whatever the page showed."""
    body = {
        "output": f"{sql_page.RESULT}.children",
        "outputs": {"id": sql_page.RESULT, "property": "children"},
        "inputs": [{"id": sql_page.RUN, "property": "n_clicks", "value": 1}],
        "changedPropIds": [f"{sql_page.RUN}.n_clicks"],
        "state": [{"id": sql_page.TEXT, "property": "value", "value": sql}],
    }
    response = client.post(
        "/dashboard/_dash-update-component",
        json=body,
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    return response.text


@pytest.mark.parametrize("key", [READ_KEY, ADMIN_A], ids=["read-key", "admin-of-one-project"])
def test_the_server_refuses_the_run_callback_to_a_key_that_may_not_run_sql(
    client: TestClient, key: str
) -> None:
    answer = run_callback(client, key, "SELECT sum(cost_usd) AS total_spend FROM llm_calls")

    assert sql_page.FORBIDDEN_TITLE in answer
    assert "total_spend" not in answer


def test_the_server_runs_the_callback_for_an_admin_of_every_project(client: TestClient) -> None:
    answer = run_callback(client, ADMIN_ALL, "SELECT count() AS calls_seen FROM llm_calls")

    assert "calls_seen" in answer
    assert sql_page.FORBIDDEN_TITLE not in answer
    assert f'"{sum(len(costs) for costs in COSTS.values())}"' in answer


def test_the_page_through_the_collector_tells_a_read_key_it_may_not_run_sql(
    client: TestClient,
) -> None:
    body = {
        "output": "..page.children...filters.style...filter-workflow.options..."
        "filter-model.options...filter-tier.options..",
        "outputs": [
            {"id": "page", "property": "children"},
            {"id": "filters", "property": "style"},
            {"id": "filter-workflow", "property": "options"},
            {"id": "filter-model", "property": "options"},
            {"id": "filter-tier", "property": "options"},
        ],
        "inputs": [{"id": "url", "property": "pathname", "value": "/dashboard/sql"}],
        "changedPropIds": ["url.pathname"],
        "state": [{"id": "url", "property": "search", "value": ""}],
    }
    for key, forbidden in ((READ_KEY, True), (ADMIN_ALL, False)):
        response = client.post(
            "/dashboard/_dash-update-component",
            json=body,
            headers={"authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        assert (sql_page.FORBIDDEN_TITLE in response.text) is forbidden
        assert (f'"{sql_page.TEXT}"' in response.text) is not forbidden
