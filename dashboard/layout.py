"""The frame of the dashboard and the skeletons of its pages, with the ids callbacks use."""

from __future__ import annotations

from dash import dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import components, figures, routes
from agentledger.dashboard.filters import Parsed
from agentledger.dashboard.headlines import DEFAULT_HEADLINE, HEADLINES

# Component ids, named once so that the layout and the callbacks cannot drift apart.
URL = "url"
PAGE = "page"
FILTERS = "filters"
WINDOW = "window"
WORKFLOW = "filter-workflow"
DATES = "filter-dates"
KPIS = "kpis"
HEADLINE = "headline-metric"
STEP_TIER_ROWS = "step-tier-rows"
STEP_TIER_HEATMAP = "step-tier-heatmap"
STEP_TIER_TABLE = "step-tier-table"
TREND = "trend"
DAY_ROWS = "day-rows"
RUNS = "runs"
NAV = "nav"
MODEL = "filter-model"
TIER = "filter-tier"

GRAPH_CONFIG: dcc.Graph.Config = {"displayModeBar": False, "responsive": True}


def shell(prefix: str) -> Component:
    """What every page shares: the location, the header, the filter bar and the page slot.

    The filter controls live here rather than in a page so that they exist whenever the
    address changes: Dash refuses a callback whose input is missing from the layout.
    """
    return html.Div(
        [
            # callback-nav: callbacks rewrite the query string without reloading the page.
            dcc.Location(id=URL, refresh="callback-nav"),
            html.Header(
                [
                    dcc.Link(["agent", html.Span("ledger")], href=prefix, className="al-brand"),
                    # A callback keeps the shared filters on these links (routes.nav_links).
                    html.Nav(nav_links(prefix, ""), id=NAV, className="al-nav"),
                ],
                className="al-header",
            ),
            html.Main([filter_bar(), html.Div(id=PAGE)], className="al-main"),
        ]
    )


def filter_bar() -> Component:
    """Workflow and time window; a callback keeps them and the query string in step."""
    return html.Div(
        [
            html.Div(
                [
                    html.Label("Workflow", htmlFor=WORKFLOW),
                    dcc.Dropdown(
                        id=WORKFLOW,
                        options=[],
                        placeholder="All workflows",
                        clearable=True,
                    ),
                ],
                className="al-filter",
            ),
            html.Div(
                [
                    html.Label("Model", htmlFor=MODEL),
                    dcc.Dropdown(id=MODEL, options=[], placeholder="All models", clearable=True),
                ],
                className="al-filter",
            ),
            html.Div(
                [
                    html.Label("Tier", htmlFor=TIER),
                    dcc.Dropdown(id=TIER, options=[], placeholder="All tiers", clearable=True),
                ],
                className="al-filter",
            ),
            html.Div(
                [
                    html.Label("Runs started (UTC)", htmlFor=DATES),
                    dcc.DatePickerRange(
                        id=DATES,
                        display_format="YYYY-MM-DD",
                        clearable=True,
                        start_date_placeholder_text="any time",
                        end_date_placeholder_text="now",
                    ),
                ],
                className="al-filter",
            ),
        ],
        id=FILTERS,
        className="al-filters",
        style=HIDDEN,
    )


def nav_links(prefix: str, search: str) -> list[Component]:
    """A link to every page, carrying the shared filters of ``search``."""
    return [
        dcc.Link(label, href=prefix + segment + search) for label, segment in routes.PAGES
    ]


HIDDEN = {"display": "none"}
SHOWN: dict[str, str] = {}


def workflow_options(workflows: list[str], chosen: str | None) -> list[dict[str, str]]:
    """The workflow choices; one named in the address but not stored still shows as chosen."""
    options = [{"label": name or "(none)", "value": name} for name in workflows]
    if chosen is not None and chosen not in workflows:
        options.append({"label": chosen, "value": chosen})
    return options


def overview_page(parsed: Parsed) -> Component:
    """The overview for the filters of the address; callbacks fill the sections."""
    notices = []
    if parsed.problems:
        text = "Part of the address was ignored: " + "; ".join(parsed.problems)
        notices.append(html.Div(text, className="al-notice"))

    return html.Div(
        [
            dcc.Store(id=WINDOW, data=parsed.filters.window().to_search()),
            dcc.Store(id=STEP_TIER_ROWS),
            dcc.Store(id=DAY_ROWS),
            *notices,
            html.Div(id=KPIS),
            components.section(
                "Steps × tiers",
                [
                    dcc.RadioItems(
                        id=HEADLINE,
                        options=[{"label": item.label, "value": item.key} for item in HEADLINES],
                        value=DEFAULT_HEADLINE,
                        className="al-metric-choice",
                        inline=True,
                    ),
                    dcc.Graph(id=STEP_TIER_HEATMAP, config=GRAPH_CONFIG, figure=figures.empty("")),
                    html.Div(id=STEP_TIER_TABLE),
                ],
                aside="A slice holds the runs that executed the step on the tier in any attempt.",
            ),
            components.section(
                "Over time",
                dcc.Graph(id=TREND, config=GRAPH_CONFIG, figure=figures.empty("", height=520)),
                aside="Per day of the runs' start, UTC.",
            ),
            components.section(
                "Runs",
                html.Div(id=RUNS),
                aside="Newest first; open a run to see its attempts and calls.",
            ),
        ]
    )


def empty_store_page() -> Component:
    """What a store without a single run shows: how to put data in."""
    return components.empty_state(
        "No runs recorded yet",
        "agentledger shows runs as soon as spans arrive at this collector's /v1/traces.",
        "To see it work, send a demo or import real agent runs:",
        html.Pre("agentledger demo\nagentledger import tau2 PATH..."),
        "or point any OpenTelemetry OTLP/HTTP exporter at this collector, then reload.",
    )


READ_FAILURE = "The ledger could not be read just now"


def read_failure() -> Component:
    return components.empty_state(
        READ_FAILURE,
        "The collector's log says why. Reload the page to try again.",
    )


def missing_page(prefix: str, path: str) -> Component:
    return components.empty_state(
        "No such page",
        f"Nothing lives at {path!r}.",
        dcc.Link("Go to the overview", href=prefix),
    )
