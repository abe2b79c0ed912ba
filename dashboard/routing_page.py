"""Routing: the decision table (task complexity × output sensitivity × context length) with
the tiers each cell ran on, their calls, success rate and cost per correct outcome, the
cheapest tier within a chosen margin of the best success rate; and cost against accuracy
per tier and model. One reader call: ``routing`` (``GET /api/v1/routing?margin=``)."""

from __future__ import annotations

from decimal import Decimal

import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import components, csv_export, figures, formatting, slices
from agentledger.dashboard.components import Column, Table
from agentledger.dashboard.filters import Filters
from agentledger.dashboard.formatting import Shown
from agentledger.schemas.analysis import AnalysisReader, RoutingCell, RoutingReport, RoutingRow

MARGIN = "routing-margin"
CONTENT = "routing-content"
SCATTER = "routing-scatter"
DEFAULT_MARGIN = 0.05
MARGINS = (0.0, 0.02, 0.05, 0.1, 0.2)
UNSCORED = "(not scored)"

COLUMNS = [
    Column("Complexity"),
    Column("Sensitivity"),
    Column("Context"),
    Column("Tier"),
    Column("Calls", numeric=True),
    Column("Runs", numeric=True),
    Column("Success rate", numeric=True, hint="correct runs / runs with a verdict"),
    Column("Cost per correct outcome", numeric=True),
    Column("Choice", hint="cheapest tier within the margin of the best success rate"),
]
MODEL_COLUMNS = [
    Column("Tier"),
    Column("Model"),
    Column("Calls", numeric=True),
    Column("Runs", numeric=True),
    Column("Success rate", numeric=True),
    Column("Spend", numeric=True),
    Column("Cost per correct outcome", numeric=True),
]


def body(reader: AnalysisReader, filters: Filters, prefix: str) -> Component:
    control = html.Div(
        [
            html.Label("Margin of the best success rate", htmlFor=MARGIN),
            dcc.Dropdown(
                id=MARGIN,
                options=[
                    {"label": f"{margin * 100:g} points", "value": margin} for margin in MARGINS
                ],
                value=DEFAULT_MARGIN,
                clearable=False,
                className="al-sort",
            ),
        ],
        className="al-filter",
    )
    return html.Div([control, html.Div(content(reader, filters, DEFAULT_MARGIN), id=CONTENT)])


def content(reader: AnalysisReader, filters: Filters, margin: float) -> Component:
    report = reader.routing(filters.slice_query(), margin)
    if not report.rows:
        return components.empty_state(
            "No model calls in this window",
            "Widen the time range or clear the model and tier filters.",
        )
    return html.Div(
        [
            components.section(
                "Decision table",
                [decision_table(report), components.undefined_legend()],
                aside="Calls scored with agentledger.task.* attributes; a cell's runs made a "
                "call of that cell on that tier.",
            ),
            components.section(
                "Cost against accuracy, per tier and model",
                [
                    dcc.Graph(id=SCATTER, figure=scatter(report), config={"displayModeBar": False}),
                    model_table(report),
                ],
            ),
        ]
    )


def _axis(value: str) -> str:
    return value or UNSCORED


def _choice(row: RoutingRow, cell: RoutingCell, margin: float) -> Shown:
    if cell.recommended:
        return Shown("cheapest within margin", tone="good")
    if row.recommended_tier is None and cell is row.tiers[0]:
        return formatting.undefined(row.reason or "no tier qualifies")
    return Shown("")


def decision_table(report: RoutingReport) -> Component:
    lines = []
    records = []
    for row in report.rows:
        for cell in row.tiers:
            lines.append(
                [
                    Shown(_axis(row.complexity)),
                    Shown(_axis(row.sensitivity)),
                    Shown(_axis(row.context)),
                    Shown(slices.tier_label(cell.tier)),
                    Shown(formatting.count_text(cell.calls)),
                    Shown(formatting.count_text(cell.runs)),
                    _success(cell.success_rate, cell.known_runs),
                    _per_correct(
                        cell.cost_per_correct_outcome_usd, cell.known_runs, cell.correct_runs
                    ),
                    _choice(row, cell, report.margin),
                ]
            )
            records.append(
                {
                    "complexity": row.complexity,
                    "sensitivity": row.sensitivity,
                    "context": row.context,
                    **cell.model_dump(mode="json"),
                    "best_success_rate": row.best_success_rate,
                    "recommended_tier": row.recommended_tier,
                }
            )
    return csv_export.downloadable("routing", components.table(Table(COLUMNS, lines)), records)


def _success(rate: float | None, known: int) -> Shown:
    return formatting.percent(rate, reason=formatting.NO_VERDICT if not known else "unknown")


def _per_correct(value: Decimal | None, known: int, correct: int) -> Shown:
    if not known:
        reason = formatting.NO_VERDICT
    elif not correct:
        reason = formatting.NO_CORRECT
    else:
        reason = "no priced calls in runs with a verdict"
    return formatting.usd(value, reason=reason)


def model_table(report: RoutingReport) -> Component:
    lines = [
        [
            Shown(slices.tier_label(point.tier)),
            Shown(slices.model_label(point.model)),
            Shown(formatting.count_text(point.calls)),
            Shown(formatting.count_text(point.runs)),
            _success(point.success_rate, point.known_runs),
            formatting.usd(point.cost_usd, reason="no priced calls"),
            _per_correct(point.cost_per_correct_outcome_usd, point.known_runs, point.correct_runs),
        ]
        for point in report.models
    ]
    records = [point.model_dump(mode="json") for point in report.models]
    return csv_export.downloadable("models", components.table(Table(MODEL_COLUMNS, lines)), records)


def scatter(report: RoutingReport) -> go.Figure:
    points = [
        point
        for point in report.models
        if point.success_rate is not None and point.cost_per_correct_outcome_usd is not None
    ]
    if not points:
        return figures.empty("No model has both a correct outcome and a known cost here")
    figure = go.Figure()
    colors = {"small": figures.TEAL, "mid": figures.BLUE, "frontier": figures.RED}
    for tier in sorted({point.tier for point in points}, key=slices.tier_label):
        mine = [point for point in points if point.tier == tier]
        figure.add_trace(
            go.Scatter(
                x=[float(point.cost_per_correct_outcome_usd or 0) for point in mine],
                y=[point.success_rate for point in mine],
                mode="markers+text",
                text=[slices.model_label(point.model) for point in mine],
                textposition="top center",
                name=slices.tier_label(tier),
                marker={"size": 12, "color": colors.get(tier, figures.GREY)},
                hovertemplate="%{text}<br>$%{x:.4f} per correct outcome<br>"
                "%{y:.1%} success<extra></extra>",
            )
        )
    figure.update_layout(
        template=figures.TEMPLATE,
        height=380,
        xaxis={"title": "cost per correct outcome (USD)", "type": "log"},
        yaxis={"title": "success rate", "tickformat": ".0%"},
        legend={"orientation": "h", "y": 1.1},
    )
    return figure
