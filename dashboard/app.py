"""The Dash application: built around a ``LedgerReader``, mounted by the collector.

The collector serves the dashboard in its own process, behind a WSGI bridge mounted at
``/dashboard``. The mount strips that prefix before Dash sees a request, so Dash routes from
``/`` while the browser must ask for ``/dashboard/...``: hence ``routes_pathname_prefix="/"``
and ``requests_pathname_prefix="/dashboard/"``.

Every callback is a thin wrapper around a plain function of ``overview`` or ``run_detail``
that takes the reader and the callback's inputs, so tests call those functions directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, html
from dash.development.base_component import Component

from agentledger.dashboard import (
    budgets,
    figures,
    layout,
    overview,
    pages,
    routes,
    run_detail,
    sql_page,
)
from agentledger.dashboard.filters import from_controls, parse_search
from agentledger.dashboard.style import INDEX_STRING
from agentledger.schemas.api import LedgerReader

logger = logging.getLogger(__name__)

DEFAULT_PREFIX = "/dashboard/"
# What the store of day rows holds when the cards could not be read.
UNREADABLE = "unreadable"

T = TypeVar("T")


def create_dash_app(
    reader: LedgerReader, *, requests_pathname_prefix: str = DEFAULT_PREFIX
) -> dash.Dash:
    """Build the dashboard over ``reader``.

    Args:
        reader: where every number comes from; the dashboard never opens the store itself.
        requests_pathname_prefix: the path under which browsers reach the app, with leading
            and trailing slashes. Mount ``app.server`` (a WSGI app) at this path minus its
            trailing slash, e.g. ``Mount("/dashboard", WSGIMiddleware(app.server))``.
    """
    prefix = requests_pathname_prefix
    if not (prefix.startswith("/") and prefix.endswith("/")):
        raise ValueError(
            f"requests_pathname_prefix={prefix!r} must start and end with '/', e.g. '/dashboard/'"
        )

    app = dash.Dash(
        __name__,
        requests_pathname_prefix=prefix,
        routes_pathname_prefix="/",
        serve_locally=True,
        include_assets_files=False,
        index_string=INDEX_STRING,
        title="agentledger",
        update_title=None,  # type: ignore[arg-type]  # None keeps the title while updating
        add_log_handler=False,
    )
    app.layout = layout.shell(prefix)
    # Pages are swapped in by the router; the validation layout lists every component any
    # page may hold, so that Dash still checks callback ids instead of suppressing the check.
    app.validation_layout = html.Div(  # type: ignore[assignment]  # Dash types it as None
        [
            layout.shell(prefix),
            layout.overview_page(parse_search(None)),
            budgets.page(),
            *pages.validation_layout(),
            *sql_page.validation_layout(),
        ]
    )
    _register_callbacks(app, reader, prefix)
    budgets.register(app, reader, prefix)
    pages.register(app, reader, prefix)  # type: ignore[arg-type]  # the collector's reader has them
    sql_page.register(app, reader)
    return app


@dataclass(frozen=True)
class Rendered:
    """What the router outputs: the page, whether the filter bar shows, the workflow choices."""

    page: Component
    filters_style: dict[str, str]
    # no_update when the page could not be read: clearing the choices would clear the choice.
    workflow_options: list[dict[str, str]] | dash.NoUpdate


def render_page(
    reader: LedgerReader, prefix: str, pathname: str | None, search: str | None
) -> Rendered:
    """The page that the address asks for."""
    route = routes.resolve(prefix, pathname)
    parsed = parse_search(search)
    # Every page sets the workflow choices, the one in the address included: a dropdown
    # drops a value missing from its options, and that would rewrite the address.
    workflows = reader.workflows(project=parsed.filters.project)
    options = layout.workflow_options(workflows, parsed.filters.workflow)

    if route.page == "run" and route.run_id is not None:
        page = run_detail.run_page(reader, route.run_id, prefix, parsed.filters)
        return Rendered(page, layout.HIDDEN, options)
    if route.page == "missing":
        return Rendered(layout.missing_page(prefix, route.path), layout.HIDDEN, options)
    if route.page == "budgets":
        return Rendered(budgets.page(), layout.SHOWN, options)
    if route.page == "sql":
        # SQL reads every project and ignores the filters; an empty store can be queried too.
        return Rendered(sql_page.page(reader), layout.HIDDEN, options)
    if not workflows:
        return Rendered(layout.empty_store_page(), layout.HIDDEN, options)
    if route.page == "analysis":
        return Rendered(pages.skeleton(route.path), layout.SHOWN, options)
    return Rendered(layout.overview_page(parsed), layout.SHOWN, options)


def dimension_options(
    reader: LedgerReader, search: str | None
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The model and tier choices, the ones in the address included (see workflow_options)."""
    filters = parse_search(search).filters
    dimensions = getattr(reader, "dimensions", None)
    found = dimensions(filters.project) if dimensions is not None else None
    models = found.models if found is not None else []
    tiers = found.tiers if found is not None else []
    return (
        layout.workflow_options(models, filters.model),
        layout.workflow_options(tiers, filters.tier),
    )


def window_search(search: str | None) -> str:
    """The part of the query string that the metrics depend on (not the run-list offset)."""
    return parse_search(search).filters.window().to_search()


ADDRESS_INPUTS = (
    f"{layout.URL}.search",
    f"{layout.WORKFLOW}.options",
    f"{layout.MODEL}.options",
    f"{layout.TIER}.options",
)


def address_moved(triggered: list[str]) -> bool:
    """Whether the filter callback runs because the address (or the page) changed, rather
    than a control: on the first call (nothing triggered), after the router set the workflow
    choices, or when the query string changed."""
    return not triggered or any(prop_id in ADDRESS_INPUTS for prop_id in triggered)


def sync_filters(
    from_url: bool,
    search: str | None,
    workflow: str | None,
    start_date: str | None,
    end_date: str | None,
    model: str | None = None,
    tier: str | None = None,
) -> tuple[Any, ...]:
    """Keep the filter controls and the query string in step, in whichever direction moved.

    When the user changes a control, the query string follows (and the run list starts over);
    when the address changes (back, forward, a link), the controls follow. Returns the new
    query string, workflow, first day, last day, model and tier, ``no_update`` where nothing
    changes.
    """
    unchanged = dash.no_update
    if from_url:
        filters = parse_search(search).filters
        first_day, last_day = filters.picker_dates()
        return unchanged, filters.workflow, first_day, last_day, filters.model, filters.tier
    chosen = from_controls(search, workflow, start_date, end_date, model=model, tier=tier)
    fresh = chosen.to_search()
    if fresh == (search or ""):
        return (unchanged,) * 6
    return (fresh,) + (unchanged,) * 5


def guarded(what: str, read: Callable[[], T], fallback: Callable[[], T]) -> T:
    """``read()``, or ``fallback()`` with the failure logged when the reader raises.

    A store that is down or a query that fails must leave a page that says so, not a
    callback error in the browser. The page does not show the exception, which may carry
    connection details; the collector's log has it.
    """
    try:
        return read()
    except Exception:  # any reader failure: log it and show a notice instead
        logger.exception("dashboard: reading %s failed; showing a notice instead", what)
        return fallback()


def _register_callbacks(app: dash.Dash, reader: LedgerReader, prefix: str) -> None:
    @app.callback(
        Output(layout.PAGE, "children"),
        Output(layout.FILTERS, "style"),
        Output(layout.WORKFLOW, "options"),
        Output(layout.MODEL, "options"),
        Output(layout.TIER, "options"),
        Input(layout.URL, "pathname"),
        State(layout.URL, "search"),
    )
    def _page(pathname: str | None, search: str | None) -> tuple[Any, ...]:
        rendered = guarded(
            "the page",
            lambda: render_page(reader, prefix, pathname, search),
            lambda: Rendered(layout.read_failure(), layout.HIDDEN, dash.no_update),
        )
        models, tiers = guarded(
            "the model and tier choices",
            lambda: dimension_options(reader, search),
            lambda: (dash.no_update, dash.no_update),
        )
        return rendered.page, rendered.filters_style, rendered.workflow_options, models, tiers

    # One callback for both directions: Dash allows a circular dependency only within one.
    @app.callback(
        Output(layout.URL, "search"),
        Output(layout.WORKFLOW, "value"),
        Output(layout.DATES, "start_date"),
        Output(layout.DATES, "end_date"),
        Output(layout.MODEL, "value"),
        Output(layout.TIER, "value"),
        Input(layout.URL, "search"),
        Input(layout.WORKFLOW, "value"),
        Input(layout.DATES, "start_date"),
        Input(layout.DATES, "end_date"),
        Input(layout.MODEL, "value"),
        Input(layout.TIER, "value"),
        # The router sets the options; as inputs they make this wait for the router.
        Input(layout.WORKFLOW, "options"),
        Input(layout.MODEL, "options"),
        Input(layout.TIER, "options"),
    )
    def _filters(
        search: str | None,
        workflow: str | None,
        start_date: str | None,
        end_date: str | None,
        model: str | None,
        tier: str | None,
        *_options: Any,
    ) -> tuple[Any, ...]:
        from_url = address_moved(list(dash.ctx.triggered_prop_ids))
        return sync_filters(from_url, search, workflow, start_date, end_date, model, tier)

    @app.callback(
        Output(layout.WINDOW, "data"),
        Input(layout.URL, "search"),
        State(layout.WINDOW, "data"),
        prevent_initial_call=True,
    )
    def _window(search: str | None, current: str | None) -> Any:
        # Paging through runs changes only the offset: the metrics must not be queried again.
        fresh = window_search(search)
        return dash.no_update if fresh == current else fresh

    @app.callback(
        Output(layout.KPIS, "children"),
        Output(layout.DAY_ROWS, "data"),
        Input(layout.WINDOW, "data"),
    )
    def _kpis(window: str | None) -> Any:
        filters = parse_search(window).filters
        return guarded(
            "the headline cards",
            lambda: overview.kpi_section(reader, filters),
            lambda: (layout.read_failure(), UNREADABLE),
        )

    @app.callback(
        Output(layout.STEP_TIER_TABLE, "children"),
        Output(layout.STEP_TIER_ROWS, "data"),
        Input(layout.WINDOW, "data"),
    )
    def _step_tiers(window: str | None) -> tuple[Any, list[dict[str, Any]]]:
        filters = parse_search(window).filters
        return guarded(
            "steps × tiers",
            lambda: overview.step_tier_section(reader, filters),
            lambda: (layout.read_failure(), []),
        )

    @app.callback(
        Output(layout.STEP_TIER_HEATMAP, "figure"),
        Input(layout.STEP_TIER_ROWS, "data"),
        Input(layout.HEADLINE, "value"),
    )
    def _heatmap(stored: list[dict[str, Any]] | None, metric: str | None) -> go.Figure:
        return overview.step_tier_heatmap(stored, metric)

    # Not on its own first call: the day rows are not there until the cards' callback ran.
    @app.callback(
        Output(layout.TREND, "figure"),
        Input(layout.DAY_ROWS, "data"),
        prevent_initial_call=True,
    )
    def _trend(stored: list[dict[str, Any]] | str | None) -> go.Figure:
        if stored == UNREADABLE:
            return figures.empty(layout.READ_FAILURE)
        return overview.stored_trend_figure(stored if isinstance(stored, list) else None)

    @app.callback(Output(layout.RUNS, "children"), Input(layout.URL, "search"))
    def _runs(search: str | None) -> Component:
        filters = parse_search(search).filters
        return guarded(
            "the run list",
            lambda: overview.runs_section(reader, filters, prefix),
            layout.read_failure,
        )
