"""Re-ingestion: how the input of a run grows call by call (fresh against re-read tokens),
the re-ingested tokens and cost of each step and tier, and the cached share of the input.
One reader call: ``reingestion`` (``GET /api/v1/reingestion``)."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import components, csv_export, figures, formatting, slices
from agentledger.dashboard.components import Column, Table
from agentledger.dashboard.filters import Filters
from agentledger.dashboard.formatting import Shown
from agentledger.schemas.analysis import AnalysisReader, ReingestionReport

CHART = "reingestion-chart"
COLUMNS = [
    Column("Step"),
    Column("Tier"),
    Column("Calls", numeric=True),
    Column("Input tokens", numeric=True),
    Column("Re-ingested tokens", numeric=True),
    Column("Re-ingestion overhead", numeric=True, hint="re-ingested ÷ input, calls with a count"),
    Column("Re-ingested cost", numeric=True, hint="each call's cost shared out by token count"),
    Column("Cached share", numeric=True, hint="cache-read input ÷ input"),
]


def body(reader: AnalysisReader, filters: Filters, prefix: str) -> Component:
    report = reader.reingestion(filters.slice_query())
    if not report.positions:
        return components.empty_state(
            "No model calls in this window",
            "Widen the time range or clear the model and tier filters.",
        )
    return html.Div(
        [
            components.section(
                "Input by call position",
                dcc.Graph(id=CHART, figure=growth(report), config={"displayModeBar": False}),
                aside="The n-th model call of each run, summed over runs: fresh input, input "
                "read before in the same run, and input of calls that reported no count.",
            ),
            components.section("By step and tier", [table(report), components.undefined_legend()]),
        ]
    )


def growth(report: ReingestionReport) -> go.Figure:
    positions = [row.position for row in report.positions]
    figure = go.Figure()
    for name, values, color in (
        ("Fresh", [row.fresh_tokens for row in report.positions], figures.BLUE),
        ("Re-ingested", [row.reingested_tokens for row in report.positions], figures.AMBER),
        ("Count not reported", [row.unknown_tokens for row in report.positions], figures.GREY),
    ):
        if any(values):
            figure.add_trace(go.Bar(x=positions, y=values, name=name, marker_color=color))
    figure.update_layout(
        template=figures.TEMPLATE,
        barmode="stack",
        height=360,
        xaxis={"title": "call position in its run"},
        yaxis={"title": "input tokens"},
        legend={"orientation": "h", "y": 1.1},
    )
    return figure


def table(report: ReingestionReport) -> Component:
    lines = [
        [
            Shown(slices.step_label(row.step)),
            Shown(slices.tier_label(row.tier)),
            Shown(formatting.count_text(row.calls)),
            Shown(formatting.count_text(row.input_tokens)),
            Shown(formatting.count_text(row.reingested_tokens)),
            formatting.percent(
                row.reingestion_overhead, reason="no call reported a re-ingested count"
            ),
            formatting.usd(row.reingested_cost_usd, reason="no priced calls"),
            formatting.percent(row.cached_share, reason="no input tokens"),
        ]
        for row in report.slices
    ]
    records = [row.model_dump(mode="json") for row in report.slices]
    return csv_export.downloadable("reingestion", components.table(Table(COLUMNS, lines)), records)
