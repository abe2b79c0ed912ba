"""The Dash app: its factory, its router and filter callbacks, and serving under a mount."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import dash
import pytest
from a2wsgi import WSGIMiddleware
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentledger.dashboard import layout, sql_page
from agentledger.dashboard.app import (
    address_moved,
    create_dash_app,
    render_page,
    sync_filters,
    window_search,
)
from tests.dashboard.fakes import FakeReader, find_all, retried_run, row, texts

PREFIX = "/dashboard/"
# The cards' callback fills the cards and the store of day rows the trend chart reads.
KPI_OUTPUT = f"..{layout.KPIS}.children...{layout.DAY_ROWS}.data.."
KPI_OUTPUTS = [
    {"id": layout.KPIS, "property": "children"},
    {"id": layout.DAY_ROWS, "property": "data"},
]

TOTALS = row(
    runs=4,
    known_runs=4,
    correct_runs=3,
    calls=9,
    attempts=9,
    cost_usd=Decimal("0.75"),
    cost_per_correct_outcome_usd=Decimal("0.25"),
    outcome_coverage=1.0,
    success_rate=0.75,
    retry_amplification=1.0,
    cost_retry_amplification=1.0,
)


def a_reader() -> FakeReader:
    run = retried_run()
    return FakeReader(
        metrics_by_group={(): [TOTALS]},
        run_list=[run],
        details={run.run_id: run},
        workflow_names=["triage", "tau2-airline"],
    )


def ids(component: Any) -> set[str]:
    # Pattern-matching ids (the CSV buttons) are dicts; the checks here name plain ids.
    found = find_all(component, lambda node: isinstance(getattr(node, "id", None), str))
    return {node.id for node in found}


def test_the_app_builds_with_the_shell_and_checks_every_page_component() -> None:
    app = create_dash_app(a_reader())

    assert app.config.requests_pathname_prefix == PREFIX
    assert app.config.routes_pathname_prefix == "/"
    assert {layout.URL, layout.PAGE, layout.WORKFLOW, layout.DATES} <= ids(app.layout)
    page_ids = {layout.KPIS, layout.STEP_TIER_HEATMAP, layout.TREND, layout.RUNS, layout.WINDOW}
    assert page_ids <= ids(app.validation_layout)


@pytest.mark.parametrize("prefix", ["dashboard/", "/dashboard", ""])
def test_a_prefix_without_its_slashes_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="requests_pathname_prefix=.* must start and end with"):
        create_dash_app(a_reader(), requests_pathname_prefix=prefix)


def test_the_overview_shows_the_filters_and_offers_every_workflow() -> None:
    reader = a_reader()

    rendered = render_page(reader, PREFIX, "/dashboard/", "?workflow=gone&since=nonsense")

    assert rendered.filters_style == layout.SHOWN
    assert rendered.workflow_options == [
        {"label": "triage", "value": "triage"},
        {"label": "tau2-airline", "value": "tau2-airline"},
        {"label": "gone", "value": "gone"},
    ]
    assert {layout.KPIS, layout.RUNS} <= ids(rendered.page)
    assert (
        "Part of the address was ignored: ignored since='nonsense': not an ISO date or date-time"
        in texts(rendered.page)
    )
    assert reader.calls == [("workflows", "default")]


def test_an_empty_store_shows_how_to_send_data() -> None:
    rendered = render_page(FakeReader(), PREFIX, "/dashboard/", "")

    assert rendered.filters_style == layout.HIDDEN
    assert "No runs recorded yet" in texts(rendered.page)
    assert "agentledger demo\nagentledger import tau2 PATH..." in texts(rendered.page)


def test_a_run_path_renders_the_run_page() -> None:
    reader = a_reader()

    rendered = render_page(reader, PREFIX, "/dashboard/runs/run-retried", "?workflow=triage")

    assert rendered.filters_style == layout.HIDDEN
    assert ("run", ("run-retried", "default")) in reader.calls
    assert "run-retried" in texts(rendered.page)


def test_an_unknown_path_says_there_is_no_such_page() -> None:
    rendered = render_page(a_reader(), PREFIX, "/dashboard/nowhere", "")

    assert "No such page" in texts(rendered.page)


def test_a_changed_control_rewrites_the_query_string_and_restarts_the_run_list() -> None:
    search, *controls = sync_filters(
        False, "?workflow=triage&offset=50", "tau2-airline", "2025-03-01", "2025-03-07"
    )

    assert search == "?workflow=tau2-airline&since=2025-03-01&until=2025-03-08"
    assert controls == [dash.no_update] * 5


def test_an_unchanged_control_leaves_the_address_alone() -> None:
    result = sync_filters(False, "?workflow=triage", "triage", None, None)

    assert result == (dash.no_update,) * 6


def test_a_changed_address_sets_the_controls() -> None:
    result = sync_filters(
        True, "?workflow=triage&since=2025-03-01&until=2025-03-08", None, None, None
    )

    assert result == (dash.no_update, "triage", "2025-03-01", "2025-03-07", None, None)


def test_a_changed_model_or_tier_goes_into_the_address() -> None:
    search, *_ = sync_filters(False, "?workflow=triage", "triage", None, None, "gpt-4.1", "mid")

    assert search == "?workflow=triage&model=gpt-4.1&tier=mid"
    assert sync_filters(True, search, None, None, None)[4:] == ("gpt-4.1", "mid")


@pytest.mark.parametrize(
    ("triggered", "moved"),
    [
        ([], True),
        (["url.search"], True),
        (["filter-workflow.options"], True),
        (["url.search", "filter-workflow.options"], True),
        (["filter-workflow.value"], False),
        (["filter-dates.start_date", "filter-dates.end_date"], False),
    ],
)
def test_the_filter_callback_tells_the_address_from_a_control(
    triggered: list[str], moved: bool
) -> None:
    assert address_moved(triggered) is moved


def test_paging_does_not_change_the_metrics_window() -> None:
    assert window_search("?workflow=triage&offset=25") == window_search("?workflow=triage")


# --- served by FastAPI through a2wsgi, as the collector mounts it ----------------------------


@pytest.fixture(scope="module")
def client() -> TestClient:
    api = FastAPI()
    api.mount("/dashboard", WSGIMiddleware(create_dash_app(a_reader()).server))
    return TestClient(api)


def test_the_mounted_dashboard_serves_its_page_with_local_scripts(client: TestClient) -> None:
    response = client.get("/dashboard/")

    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert '"requests_pathname_prefix":"\\u002fdashboard\\u002f"' in response.text
    assert ".al-card" in response.text  # the stylesheet is inline, not fetched
    scripts = re.findall(r'<script src="([^"]+)"', response.text)
    assert scripts
    assert all(src.startswith("/dashboard/_dash-component-suites/") for src in scripts)
    assert client.get(scripts[-1]).status_code == 200


def test_a_deep_link_to_a_run_serves_the_same_page(client: TestClient) -> None:
    assert client.get("/dashboard/runs/run-retried?workflow=triage").status_code == 200


def test_the_mounted_dashboard_serves_its_layout_and_callbacks(client: TestClient) -> None:
    layout_json = client.get("/dashboard/_dash-layout")
    dependencies = client.get("/dashboard/_dash-dependencies")

    assert layout_json.status_code == 200
    assert layout_json.headers["content-type"].startswith("application/json")
    assert layout.URL in layout_json.text
    assert dependencies.status_code == 200
    outputs = {item["output"] for item in dependencies.json()}
    assert f"..{layout.KPIS}.children...{layout.DAY_ROWS}.data.." in outputs
    assert f"{layout.TREND}.figure" in outputs
    assert f"{sql_page.RESULT}.children" in outputs


def test_a_callback_through_the_mount_returns_the_formatted_api_numbers(
    client: TestClient,
) -> None:
    body = {
        "output": KPI_OUTPUT,
        "outputs": KPI_OUTPUTS,
        "inputs": [{"id": layout.WINDOW, "property": "data", "value": "?workflow=triage"}],
        "changedPropIds": [f"{layout.WINDOW}.data"],
        "state": [],
    }

    response = client.post("/dashboard/_dash-update-component", json=body)

    assert response.status_code == 200
    text = response.text
    # $0.75 over 3 correct runs, as the API reported it: $0.250.
    for expected in ("$0.750", "$0.250", "75.0%", "3 of 4 runs with a verdict were correct"):
        assert expected in text
    assert "NaN" not in text


class BrokenReader(FakeReader):
    """A reader whose store is down."""

    def metrics(self, query: Any) -> Any:
        raise ConnectionError("store at http://user:secret@db:8123 refused the connection")


def test_a_failing_reader_leaves_a_notice_and_a_log_line_not_a_broken_page(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FastAPI()
    api.mount("/dashboard", WSGIMiddleware(create_dash_app(BrokenReader()).server))
    body = {
        "output": KPI_OUTPUT,
        "outputs": KPI_OUTPUTS,
        "inputs": [{"id": layout.WINDOW, "property": "data", "value": ""}],
        "changedPropIds": [f"{layout.WINDOW}.data"],
        "state": [],
    }

    with caplog.at_level("ERROR", logger="agentledger.dashboard.app"):
        response = TestClient(api).post("/dashboard/_dash-update-component", json=body)

    assert response.status_code == 200
    assert "The ledger could not be read just now" in response.text
    assert "secret" not in response.text
    assert "reading the headline cards failed" in caplog.text


def test_the_sql_page_needs_no_runs_and_hides_the_filters() -> None:
    # SQL reads the store as it is and ignores the shared filters; a fake reader without
    # ``sql`` gets a page that says it cannot run SQL rather than a form.
    rendered = render_page(FakeReader(), PREFIX, "/dashboard/sql", "")

    assert rendered.filters_style == layout.HIDDEN
    assert sql_page.UNAVAILABLE_TITLE in texts(rendered.page)
    assert not find_all(rendered.page, lambda node: getattr(node, "id", None) == sql_page.TEXT)


def test_when_the_cards_cannot_be_read_the_chart_over_time_says_so(client: TestClient) -> None:
    body = {
        "output": f"{layout.TREND}.figure",
        "outputs": {"id": layout.TREND, "property": "figure"},
        "inputs": [{"id": layout.DAY_ROWS, "property": "data", "value": "unreadable"}],
        "changedPropIds": [f"{layout.DAY_ROWS}.data"],
        "state": [],
    }

    response = client.post("/dashboard/_dash-update-component", json=body)

    assert response.status_code == 200
    assert layout.READ_FAILURE in response.text
