"""Tails: cost and tokens per run (p50, p95, p99, max) per workflow, the runs in the tail,
and predicted against actual tokens with their correlation. One reader call: ``tails``
(``GET /api/v1/tails``)."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import components, csv_export, figures, formatting, overview, slices
from agentledger.dashboard.components import Column, Kpi, Table
from agentledger.dashboard.filters import Filters
from agentledger.dashboard.formatting import Shown
from agentledger.dashboard.routes import run_href
from agentledger.schemas.analysis import AnalysisReader, TailReport

SCATTER = "tails-scatter"
NO_PRICE = "no run of this workflow has a known cost"
COLUMNS = [
    Column("Workflow"),
    Column("Runs", numeric=True),
    Column("Cost p50", numeric=True),
    Column("Cost p95", numeric=True),
    Column("Cost p99", numeric=True),
    Column("Cost max", numeric=True),
    Column("Tokens p50", numeric=True),
    Column("Tokens p95", numeric=True),
    Column("Tokens p99", numeric=True),
    Column("Tokens max", numeric=True),
]
TAIL_COLUMNS = [
    Column("Run"),
    Column("Workflow"),
    Column("Started (UTC)"),
    Column("Outcome"),
    Column("Tokens", numeric=True),
    Column("Cost", numeric=True),
]


def body(reader: AnalysisReader, filters: Filters, prefix: str) -> Component:
    report = reader.tails(filters.slice_query())
    if not report.workflows:
        return components.empty_state(
            "No runs in this window", "Widen the time range or choose another workflow."
        )
    return html.Div(
        [
            components.section(
                "Per run, by workflow",
                [quantile_table(report), components.undefined_legend()],
                aside="A quantile is the run at position ⌊q·n⌋ of the n runs sorted by value.",
            ),
            components.section(
                "Runs in the tail",
                tail_table(report, prefix, filters),
                aside="Runs at or above their workflow's 95th percentile of cost.",
            ),
            components.section(
                "Predicted against actual tokens",
                [
                    components.kpi_cards(prediction_kpis(report)),
                    dcc.Graph(id=SCATTER, figure=scatter(report), config={"displayModeBar": False}),
                ],
                aside="Calls that carried a prediction of their tokens (input + output).",
            ),
        ]
    )


def quantile_table(report: TailReport) -> Component:
    def tokens(value: int | None) -> Shown:
        return formatting.tokens(value, reason="no runs")

    lines = [
        [
            Shown(row.workflow or "(none)"),
            Shown(formatting.count_text(row.runs)),
            formatting.usd(row.cost_p50_usd, reason=NO_PRICE),
            formatting.usd(row.cost_p95_usd, reason=NO_PRICE),
            formatting.usd(row.cost_p99_usd, reason=NO_PRICE),
            formatting.usd(row.cost_max_usd, reason=NO_PRICE),
            tokens(row.tokens_p50),
            tokens(row.tokens_p95),
            tokens(row.tokens_p99),
            tokens(row.tokens_max),
        ]
        for row in report.workflows
    ]
    records = [row.model_dump(mode="json") for row in report.workflows]
    return csv_export.downloadable("tails", components.table(Table(COLUMNS, lines)), records)


def tail_table(report: TailReport, prefix: str, filters: Filters) -> Component:
    if not report.tail_runs:
        return components.empty_state("No tail runs", "No run in this window has a known cost.")
    lines = [
        [
            overview.run_link(run.run_id, run_href(prefix, run.run_id, filters)),
            Shown(run.workflow or "(none)"),
            Shown(formatting.timestamp(run.start_time)),
            overview.outcome(run.outcome),
            Shown(formatting.count_text(run.total_tokens)),
            formatting.usd(run.cost_usd, reason="no priced calls"),
        ]
        for run in report.tail_runs
    ]
    records = [run.model_dump(mode="json") for run in report.tail_runs]
    return csv_export.downloadable(
        "tail-runs", components.table(Table(TAIL_COLUMNS, lines)), records
    )


def prediction_kpis(report: TailReport) -> list[Kpi]:
    if report.predicted_calls < 2:
        why = "fewer than two calls carried a prediction"
    else:
        why = "predictions or actual tokens do not vary"
    correlation = (
        Shown(f"{report.prediction_correlation:.2f}", exact=repr(report.prediction_correlation))
        if report.prediction_correlation is not None
        else formatting.undefined(why)
    )
    return [
        Kpi("Calls with a prediction", Shown(formatting.count_text(report.predicted_calls))),
        Kpi("Correlation (Pearson)", correlation),
    ]


def scatter(report: TailReport) -> go.Figure:
    if not report.predictions:
        return figures.empty("No call in this window carried a prediction of its tokens")
    figure = go.Figure(
        go.Scatter(
            x=[point.predicted_tokens for point in report.predictions],
            y=[point.actual_tokens for point in report.predictions],
            mode="markers",
            marker={"color": figures.BLUE, "opacity": 0.5, "size": 6},
            text=[
                f"{slices.model_label(point.model)} ({slices.tier_label(point.tier)})"
                for point in report.predictions
            ],
            hovertemplate="%{text}<br>predicted %{x:,}<br>actual %{y:,}<extra></extra>",
        )
    )
    top = max(
        max(point.predicted_tokens for point in report.predictions),
        max(point.actual_tokens for point in report.predictions),
    )
    figure.add_trace(
        go.Scatter(
            x=[0, top],
            y=[0, top],
            mode="lines",
            line={"color": figures.GREY, "dash": "dot"},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    figure.update_layout(
        template=figures.TEMPLATE,
        height=380,
        showlegend=False,
        xaxis={"title": "predicted tokens"},
        yaxis={"title": "actual tokens"},
    )
    return figure
