"""Paths of the dashboard's pages under the prefix the browser sees."""

from __future__ import annotations

import pytest

from agentledger.dashboard.filters import Filters
from agentledger.dashboard.routes import Route, overview_href, resolve, run_href

PREFIX = "/dashboard/"


@pytest.mark.parametrize(
    ("pathname", "route"),
    [
        ("/dashboard/", Route("overview")),
        ("/dashboard", Route("overview")),
        (None, Route("overview")),
        ("/dashboard/runs/abc123", Route("run", run_id="abc123")),
        ("/dashboard/runs/a%2Fb%20c", Route("run", run_id="a/b c")),
        ("/dashboard/runs/", Route("analysis", path="runs")),
        ("/dashboard/steps", Route("analysis", path="steps")),
        ("/dashboard/routing/", Route("analysis", path="routing")),
        ("/dashboard/sql", Route("sql")),
        ("/dashboard/sql/more", Route("missing", path="sql/more")),
        ("/dashboard/elsewhere", Route("missing", path="elsewhere")),
    ],
)
def test_paths_resolve_to_pages(pathname: str | None, route: Route) -> None:
    assert resolve(PREFIX, pathname) == route


def test_a_run_link_carries_the_filters_and_resolves_back_to_its_run() -> None:
    filters = Filters(workflow="triage", offset=25)

    href = run_href(PREFIX, "sim/42 b", filters)

    assert href == "/dashboard/runs/sim%2F42%20b?workflow=triage&offset=25"
    assert resolve(PREFIX, href.partition("?")[0]) == Route("run", run_id="sim/42 b")


def test_the_overview_link_keeps_the_filters() -> None:
    assert overview_href(PREFIX, Filters(workflow="triage")) == "/dashboard/?workflow=triage"
    assert overview_href("/", Filters()) == "/"
