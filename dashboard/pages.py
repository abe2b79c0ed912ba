"""The analysis pages (steps × tiers, re-ingestion, retries, runs, tails, routing): their
skeleton, the one callback that fills whichever is shown, and their controls' callbacks.

Each page module has ``body(reader, filters, prefix)``: a plain function that tests call
directly, making the reader calls whose answers the API gives for the same filters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import (
    csv_export,
    figures,
    layout,
    reingestion_page,
    retries_page,
    routes,
    routing_page,
    runs_page,
    steps_page,
    tails_page,
)
from agentledger.dashboard.filters import Filters, parse_search
from agentledger.schemas.analysis import AnalysisReader

logger = logging.getLogger(__name__)

BODY = "analysis-body"
KEY = "analysis-key"

Body = Callable[[Any, Filters, str], Component]
BODIES: dict[str, tuple[str, Body]] = {
    routes.STEPS_SEGMENT: ("Steps × tiers", steps_page.body),
    routes.REINGESTION_SEGMENT: ("Re-ingestion", reingestion_page.body),
    routes.RETRIES_SEGMENT: ("Retries", retries_page.body),
    routes.RUNS_SEGMENT: ("Runs", runs_page.body),
    routes.TAILS_SEGMENT: ("Tails", tails_page.body),
    routes.ROUTING_SEGMENT: ("Routing", routing_page.body),
}


def skeleton(segment: str) -> Component:
    """The page frame; the body callback fills it when it appears and when filters change."""
    title = BODIES[segment][0]
    return html.Div(
        [
            dcc.Store(id=KEY, data=segment),
            html.H1(title, className="al-title"),
            dcc.Loading(html.Div(id=BODY, className="al-analysis"), type="dot"),
        ]
    )


def validation_layout() -> list[Component]:
    """Every component id the analysis pages' callbacks use, for Dash's id check."""
    empty = figures.empty("")
    return [
        skeleton(routes.STEPS_SEGMENT),
        dcc.Store(id=steps_page.ROWS),
        dcc.RadioItems(id=steps_page.METRIC),
        dcc.Dropdown(id=steps_page.SORT),
        dcc.Graph(id=steps_page.HEATMAP, figure=empty),
        html.Div(id=steps_page.TABLE),
        dcc.Input(id=runs_page.SEARCH),
        dcc.Dropdown(id=routing_page.MARGIN),
        html.Div(id=routing_page.CONTENT),
        csv_export.downloadable("validation", html.Div(), []),
    ]


def render_body(
    reader: AnalysisReader, prefix: str, segment: str | None, search: str | None
) -> Component:
    """The body of the page ``segment`` for the filters of ``search``."""
    parsed = parse_search(search)
    if segment not in BODIES:
        return html.Div()
    notices: list[Component] = []
    if parsed.problems:
        text = "Part of the address was ignored: " + "; ".join(parsed.problems)
        notices.append(html.Div(text, className="al-notice"))
    return html.Div([*notices, BODIES[segment][1](reader, parsed.filters, prefix)])


def _guarded(what: str, read: Callable[[], Any], fallback: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:  # any reader failure: log it and show a notice instead
        logger.exception("dashboard: reading %s failed; showing a notice instead", what)
        return fallback()


def register(app: dash.Dash, reader: AnalysisReader, prefix: str) -> None:
    """The callbacks of the analysis pages and of the header's links."""

    @app.callback(
        Output(BODY, "children"),
        Input(KEY, "data"),
        Input(layout.URL, "search"),
    )
    def _body(segment: str | None, search: str | None) -> Any:
        return _guarded(
            f"the {segment} page",
            lambda: render_body(reader, prefix, segment, search),
            layout.read_failure,
        )

    @app.callback(Output(layout.NAV, "children"), Input(layout.URL, "search"))
    def _nav(search: str | None) -> Any:
        shared = parse_search(search).filters
        kept = Filters(
            workflow=shared.workflow,
            since=shared.since,
            until=shared.until,
            project=shared.project,
            model=shared.model,
            tier=shared.tier,
        )
        return layout.nav_links(prefix, kept.to_search())

    @app.callback(
        Output(steps_page.HEATMAP, "figure"),
        Output(steps_page.TABLE, "children"),
        Input(steps_page.METRIC, "value"),
        Input(steps_page.SORT, "value"),
        State(steps_page.ROWS, "data"),
        prevent_initial_call=True,
    )
    def _steps(metric: str | None, sort: str | None, stored: dict[str, Any] | None) -> Any:
        stored = stored or {}
        return steps_page.render(
            stored.get("rows", []),
            metric or steps_page.METRICS[0][0],
            sort or "step",
            prefix,
            stored.get("search", ""),
        )

    @app.callback(
        Output(layout.URL, "href", allow_duplicate=True),
        Input(steps_page.HEATMAP, "clickData"),
        State(layout.URL, "search"),
        prevent_initial_call=True,
    )
    def _open_cell(click: dict[str, Any] | None, search: str | None) -> Any:
        points = (click or {}).get("points") or []
        href = steps_page.runs_href_for_click(prefix, search or "", points[0]) if points else None
        return href if href is not None else dash.no_update

    @app.callback(
        Output(layout.URL, "search", allow_duplicate=True),
        Input(runs_page.SEARCH, "value"),
        State(layout.URL, "search"),
        prevent_initial_call=True,
    )
    def _search(text: str | None, search: str | None) -> Any:
        fresh = runs_page.with_search(search, text).to_search()
        return dash.no_update if fresh == (search or "") else fresh

    @app.callback(
        Output(routing_page.CONTENT, "children"),
        Input(routing_page.MARGIN, "value"),
        State(layout.URL, "search"),
        prevent_initial_call=True,
    )
    def _margin(margin: float | None, search: str | None) -> Any:
        filters = parse_search(search).filters
        chosen = routing_page.DEFAULT_MARGIN if margin is None else float(margin)
        return _guarded(
            "the routing table",
            lambda: routing_page.content(reader, filters, chosen),
            layout.read_failure,
        )

    csv_export.register(app)
