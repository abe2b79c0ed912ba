"""Steps × tiers: cost per correct outcome, success rate, share of spend and of calls of
each step on each tier, as a heatmap and a sortable table whose cells open the runs behind
them. One reader call: ``metrics`` grouped by step and tier (``GET /api/v1/metrics``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component
from pydantic import ValidationError

from agentledger.dashboard import components, csv_export, figures, formatting, slices
from agentledger.dashboard.components import Column, Table
from agentledger.dashboard.filters import Filters, parse_search
from agentledger.dashboard.formatting import Shown
from agentledger.dashboard.routes import RUNS_SEGMENT, page_href
from agentledger.schemas.api import LedgerReader, MetricsRow

ROWS = "steps-rows"
METRIC = "steps-metric"
SORT = "steps-sort"
HEATMAP = "steps-heatmap"
TABLE = "steps-table"

#: What the heatmap can colour by: MetricsRow field (or share) and label.
METRICS = (
    ("cost_per_correct_outcome_usd", "Cost per correct outcome"),
    ("success_rate", "Success rate"),
    ("spend_share", "Share of spend"),
    ("call_share", "Share of calls"),
)
SORTS = (
    ("step", "Step and tier"),
    ("cost_per_correct_outcome_usd", "Cost per correct outcome"),
    ("success_rate", "Success rate"),
    ("cost_usd", "Spend"),
    ("calls", "Calls"),
    ("runs", "Runs"),
)

COLUMNS = [
    Column("Step"),
    Column("Tier"),
    Column("Runs", numeric=True, hint="runs that executed this step on this tier; opens them"),
    Column("Success rate", numeric=True, hint="correct runs / runs with a verdict"),
    Column("Cost per correct outcome", numeric=True),
    Column("Spend", numeric=True),
    Column("Share of spend", numeric=True, hint="of the known spend of all steps and tiers"),
    Column("Calls", numeric=True),
    Column("Share of calls", numeric=True),
    Column("Retry amplification", numeric=True),
]


def body(reader: LedgerReader, filters: Filters, prefix: str) -> Component:
    """The page for ``filters``: controls, the stored rows, and the first rendering."""
    rows = reader.metrics(filters.metrics_query(["step", "tier"]))
    if not rows:
        return components.empty_state(
            "No steps in this window",
            "Runs whose calls ran inside steps show up here. Widen the time range or clear "
            "the model and tier filters.",
        )
    stored = [row.model_dump(mode="json") for row in rows]
    graph, table = render(stored, METRICS[0][0], "step", prefix, filters.to_search())
    return html.Div(
        [
            dcc.Store(id=ROWS, data={"rows": stored, "search": filters.to_search()}),
            components.section(
                "Heatmap",
                [
                    dcc.RadioItems(
                        id=METRIC,
                        options=[{"label": label, "value": key} for key, label in METRICS],
                        value=METRICS[0][0],
                        inline=True,
                        className="al-metric-choice",
                    ),
                    dcc.Graph(id=HEATMAP, figure=graph, config={"displayModeBar": False}),
                ],
                aside="Click a cell to open the runs behind it.",
            ),
            components.section(
                "Table",
                [
                    html.Div(
                        [
                            html.Label("Sort by", htmlFor=SORT),
                            dcc.Dropdown(
                                id=SORT,
                                options=[{"label": label, "value": key} for key, label in SORTS],
                                value="step",
                                clearable=False,
                                className="al-sort",
                            ),
                        ],
                        className="al-filter",
                    ),
                    html.Div(table, id=TABLE),
                ],
                aside="A slice holds the runs that executed the step on the tier in any attempt.",
            ),
        ]
    )


def shares(rows: list[MetricsRow]) -> dict[tuple[str, str], tuple[float | None, float | None]]:
    """Each cell's share of the known spend and of the calls of all cells."""
    spend = sum((row.cost_usd or Decimal(0) for row in rows), Decimal(0))
    calls = sum(row.calls for row in rows)
    return {
        (row.step or "", row.tier or ""): (
            float((row.cost_usd or Decimal(0)) / spend) if spend else None,
            row.calls / calls if calls else None,
        )
        for row in rows
    }


def render(
    stored: list[dict[str, Any]], metric: str, sort: str, prefix: str, search: str
) -> tuple[go.Figure, Component]:
    """The heatmap and the sorted table from the stored API rows."""
    try:
        rows = [MetricsRow.model_validate(item) for item in stored]
    except ValidationError:
        return figures.empty("Reload the page to refresh this chart"), html.Div()
    share = shares(rows)
    filters = parse_search(search).filters
    return heatmap(rows, share, metric), _table(rows, share, sort, prefix, filters)


def _value(row: MetricsRow, share: tuple[float | None, float | None], key: str) -> float | None:
    if key == "spend_share":
        return share[0]
    if key == "call_share":
        return share[1]
    raw = getattr(row, key)
    return None if raw is None else float(raw)


def heatmap(
    rows: list[MetricsRow],
    share: dict[tuple[str, str], tuple[float | None, float | None]],
    metric: str,
) -> go.Figure:
    grid = slices.grid(rows)
    label = dict(METRICS).get(metric, METRICS[0][1])
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for step in grid.steps:
        z_row: list[float | None] = []
        text_row: list[str] = []
        for tier in grid.tiers:
            row = grid.cells.get((step, tier))
            if row is None:
                z_row.append(None)
                text_row.append("")
                continue
            z_row.append(_value(row, share[(step, tier)], metric))
            text_row.append(_cell_text(row, share[(step, tier)], metric).text)
        z.append(z_row)
        text.append(text_row)
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[slices.tier_label(tier) for tier in grid.tiers],
            y=[slices.step_label(step) for step in grid.steps],
            text=text,
            texttemplate="%{text}",
            hovertemplate="%{y} on %{x}<br>" + label + ": %{text}<extra></extra>",
            colorscale=figures.SCALE,
            showscale=False,
            xgap=2,
            ygap=2,
        )
    )
    figure.update_layout(
        template=figures.TEMPLATE,
        height=max(220, 48 * len(grid.steps) + 80),
        yaxis={"autorange": "reversed"},
    )
    return figure


def _cell_text(row: MetricsRow, share: tuple[float | None, float | None], metric: str) -> Shown:
    if metric == "success_rate":
        return formatting.success_rate(row)
    if metric == "spend_share":
        return formatting.percent(share[0], reason="no known spend")
    if metric == "call_share":
        return formatting.percent(share[1], reason=formatting.NO_CALLS)
    return formatting.cost_per_correct_outcome(row)


def _sort_key(row: MetricsRow, key: str) -> tuple[Any, ...]:
    if key == "step":
        return ()
    value = getattr(row, key)
    # Undefined values go last whatever the direction.
    return (value is None, -(float(value)) if value is not None else 0.0)


def _table(
    rows: list[MetricsRow],
    share: dict[tuple[str, str], tuple[float | None, float | None]],
    sort: str,
    prefix: str,
    filters: Filters,
) -> Component:
    ordered = slices.grid(rows).ordered_rows()
    if sort != "step":
        ascending = sort == "cost_per_correct_outcome_usd"
        keyed = sorted(ordered, key=lambda row: _sort_key(row, sort))
        if ascending:
            defined = [row for row in keyed if getattr(row, sort) is not None]
            keyed = sorted(defined, key=lambda row: float(getattr(row, sort))) + [
                row for row in keyed if getattr(row, sort) is None
            ]
        ordered = keyed
    lines = []
    for row in ordered:
        cell = share[(row.step or "", row.tier or "")]
        runs_filters = Filters(
            workflow=filters.workflow,
            since=filters.since,
            until=filters.until,
            project=filters.project,
            model=filters.model,
            step=row.step or None,
            tier=row.tier or None,
        )
        lines.append(
            [
                Shown(slices.step_label(row.step)),
                Shown(slices.tier_label(row.tier)),
                Shown(
                    formatting.count_text(row.runs),
                    href=page_href(prefix, RUNS_SEGMENT, runs_filters),
                ),
                formatting.success_rate(row),
                formatting.cost_per_correct_outcome(row),
                formatting.spend(row),
                formatting.percent(cell[0], reason="no known spend"),
                Shown(formatting.count_text(row.calls)),
                formatting.percent(cell[1], reason=formatting.NO_CALLS),
                formatting.retry_amplification(row),
            ]
        )
    records = [row.model_dump(mode="json") for row in ordered]
    return csv_export.downloadable("steps-tiers", components.table(Table(COLUMNS, lines)), records)


def runs_href_for_click(prefix: str, search: str, point: dict[str, Any]) -> str | None:
    """The run list behind a clicked heatmap cell, or None for a click outside the cells."""
    step, tier = point.get("y"), point.get("x")
    if step is None or tier is None:
        return None
    filters = parse_search(search).filters
    chosen = Filters(
        workflow=filters.workflow,
        since=filters.since,
        until=filters.until,
        project=filters.project,
        model=filters.model,
        step=None if step == slices.NO_STEP else str(step),
        tier=None if tier == slices.NO_TIER else str(tier),
    )
    return page_href(prefix, RUNS_SEGMENT, chosen)
