"""Retries: retry rate, amplification and the cost of discarded attempts per step and tier,
and how many attempts the instances of each step took. Two reader calls: ``retries``
(``GET /api/v1/retries``) and ``metrics`` by step and tier for amplification."""

from __future__ import annotations

import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import components, csv_export, figures, formatting, slices
from agentledger.dashboard.components import Column, Table
from agentledger.dashboard.filters import Filters
from agentledger.dashboard.formatting import Shown
from agentledger.schemas.analysis import AnalysisReader, RetryReport
from agentledger.schemas.api import MetricsRow

DISTRIBUTION = "retries-distribution"
COLUMNS = [
    Column("Step"),
    Column("Tier"),
    Column("Instances", numeric=True, hint="step instances with an attempt on this tier"),
    Column("Attempts", numeric=True),
    Column("Retry rate", numeric=True, hint="instances with more than one attempt"),
    Column("Retry amplification (tokens)", numeric=True),
    Column("Retry amplification (cost)", numeric=True),
    Column("Discarded attempts", numeric=True),
    Column("Discarded tokens", numeric=True),
    Column("Discarded cost", numeric=True, hint="cost of attempts whose output was not used"),
]
DISTRIBUTION_COLUMNS = [
    Column("Step"),
    Column("Attempts per instance", numeric=True),
    Column("Instances", numeric=True),
]


def body(reader: AnalysisReader, filters: Filters, prefix: str) -> Component:
    report = reader.retries(filters.slice_query())
    if not report.slices:
        return components.empty_state(
            "No step attempts in this window",
            "Retries are counted for calls that run inside steps. Widen the time range or "
            "clear the model and tier filters.",
        )
    amplification = {
        (row.step or "", row.tier or ""): row
        for row in reader.metrics(filters.metrics_query(["step", "tier"]))
    }
    return html.Div(
        [
            components.section(
                "By step and tier",
                [table(report, amplification), components.undefined_legend()],
                aside="Amplification: tokens (or cost) of all attempts ÷ those of accepted ones.",
            ),
            components.section(
                "Attempts per instance",
                [
                    dcc.Graph(
                        id=DISTRIBUTION,
                        figure=distribution_figure(report),
                        config={"displayModeBar": False},
                    ),
                    distribution_table(report),
                ],
            ),
        ]
    )


def table(report: RetryReport, amplification: dict[tuple[str, str], MetricsRow]) -> Component:
    lines = []
    for row in report.slices:
        metrics = amplification.get((row.step, row.tier))
        lines.append(
            [
                Shown(slices.step_label(row.step)),
                Shown(slices.tier_label(row.tier)),
                Shown(formatting.count_text(row.instances)),
                Shown(formatting.count_text(row.attempts)),
                formatting.percent(row.retry_rate, reason="no instances"),
                formatting.retry_amplification(metrics)
                if metrics is not None
                else formatting.undefined("no calls on this tier"),
                formatting.cost_retry_amplification(metrics)
                if metrics is not None
                else formatting.undefined("no calls on this tier"),
                Shown(formatting.count_text(row.discarded_attempts)),
                Shown(formatting.count_text(row.discarded_tokens)),
                formatting.usd(row.discarded_cost_usd, reason="no priced calls"),
            ]
        )
    records = []
    for row in report.slices:
        record = row.model_dump(mode="json")
        metrics = amplification.get((row.step, row.tier))
        record["retry_amplification"] = metrics.retry_amplification if metrics else None
        record["cost_retry_amplification"] = metrics.cost_retry_amplification if metrics else None
        records.append(record)
    return csv_export.downloadable("retries", components.table(Table(COLUMNS, lines)), records)


def distribution_figure(report: RetryReport) -> go.Figure:
    figure = go.Figure()
    counts = sorted({row.attempts for row in report.distribution})
    steps = sorted({row.step for row in report.distribution})
    by_key = {(row.step, row.attempts): row.instances for row in report.distribution}
    for index, attempts in enumerate(counts):
        figure.add_trace(
            go.Bar(
                x=[slices.step_label(step) for step in steps],
                y=[by_key.get((step, attempts), 0) for step in steps],
                name=f"{attempts} attempt" + ("" if attempts == 1 else "s"),
                marker_color=[figures.GREY, figures.AMBER, figures.RED, figures.BLUE][
                    min(index, 3)
                ],
            )
        )
    figure.update_layout(
        template=figures.TEMPLATE,
        barmode="stack",
        height=320,
        yaxis={"title": "instances"},
        legend={"orientation": "h", "y": 1.12},
    )
    return figure


def distribution_table(report: RetryReport) -> Component:
    lines = [
        [
            Shown(slices.step_label(row.step)),
            Shown(formatting.count_text(row.attempts)),
            Shown(formatting.count_text(row.instances)),
        ]
        for row in report.distribution
    ]
    records = [row.model_dump(mode="json") for row in report.distribution]
    return csv_export.downloadable(
        "attempts-per-instance", components.table(Table(DISTRIBUTION_COLUMNS, lines)), records
    )
