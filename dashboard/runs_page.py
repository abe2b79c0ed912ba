"""Runs: a searchable run list with the shared filters, a step and tier when opened from a
steps × tiers cell, and text found in the run id or workflow. One reader call:
``run_search`` (``GET /api/v1/run_search``)."""

from __future__ import annotations

from dash import dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import components, csv_export, overview, slices
from agentledger.dashboard.filters import Filters, parse_search
from agentledger.dashboard.routes import RUNS_SEGMENT, page_href
from agentledger.schemas.analysis import AnalysisReader

SEARCH = "runs-search"


def body(reader: AnalysisReader, filters: Filters, prefix: str) -> Component:
    page = reader.run_search(filters.run_search_query())
    narrowed = []
    if filters.step is not None:
        narrowed.append(
            html.P(
                f"Runs that executed {slices.step_label(filters.step)} on "
                f"{slices.tier_label(filters.tier)} in any attempt.",
                className="al-section-aside",
            )
        )
    search = html.Div(
        [
            html.Label("Search run id or workflow", htmlFor=SEARCH),
            dcc.Input(
                id=SEARCH,
                type="search",
                value=filters.search or "",
                debounce=True,
                placeholder="e.g. demo-7-003 or support",
                className="al-search",
            ),
        ],
        className="al-filter",
    )
    if page.total == 0:
        listing = components.empty_state(
            "No runs match",
            "Nothing in this window matches the filters and the search text.",
        )
    else:
        line, newer, older = overview.pager(page, prefix, filters)
        # The pager of the overview points at the overview; this page keeps its own path.
        base = prefix + RUNS_SEGMENT
        newer = newer.replace(prefix, base, 1) if newer else None
        older = older.replace(prefix, base, 1) if older else None
        table = csv_export.downloadable(
            "runs",
            components.table(overview.runs_table(page, prefix, filters)),
            [run.model_dump(mode="json") for run in page.runs],
        )
        listing = components.run_list(table, line, newer, older)
    return html.Div([search, *narrowed, listing])


def with_search(search: str | None, text: str | None) -> Filters:
    """The filters of the address with new search text; the list starts over."""
    current = parse_search(search).filters
    return Filters(
        workflow=current.workflow,
        since=current.since,
        until=current.until,
        project=current.project,
        model=current.model,
        tier=current.tier,
        step=current.step,
        search=(text or "").strip() or None,
    )


def href(prefix: str, filters: Filters) -> str:
    return page_href(prefix, RUNS_SEGMENT, filters)
