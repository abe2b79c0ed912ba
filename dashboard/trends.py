"""The headline cards' trends: one value per UTC day of the runs' start, drawn as sparklines.

The values are those of ``GET /api/v1/metrics?group_by=day`` (and, for budget breaches,
``GET /api/v1/budgets/by_day``) with the overview's filters. Every card shares one run of
days, from the first day with runs to the last, so that the sparklines line up.

A day without runs is zero for a count (runs, unpriced calls, breaches) and a gap for
everything else, as is a day whose figure the API leaves undefined: a gap never reads as
zero, and no value is ever NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import plotly.graph_objects as go

from agentledger.dashboard import formatting
from agentledger.dashboard.figures import BLUE, TEMPLATE
from agentledger.dashboard.formatting import Shown
from agentledger.schemas.analysis import BreachDay
from agentledger.schemas.api import MetricsRow

#: Shown on hover for a day that has no runs in the window.
NO_RUNS_THAT_DAY = "no runs started on this day"
SPARK_HEIGHT = 44


@dataclass(frozen=True)
class Trend:
    """One card's values per day: ``values[i]`` is None where the figure is undefined."""

    days: list[str]
    values: list[float | None]
    texts: list[str]
    #: Counts and money start their axis at zero; rates and multiples zoom to their range.
    from_zero: bool = False


# What each card plots: the number placed on the chart and the text shown for it.
_Value = Callable[[MetricsRow], float | Decimal | None]
_Text = Callable[[MetricsRow], Shown]
_COUNTS = {"Runs", "Unpriced calls"}
_FROM_ZERO = _COUNTS | {"Spend", "Cost per correct outcome"}
_METRICS: tuple[tuple[str, _Value, _Text], ...] = (
    ("Runs", lambda row: row.runs, formatting.runs),
    ("Success rate", lambda row: row.success_rate, formatting.success_rate),
    ("Spend", lambda row: row.cost_usd, formatting.spend),
    (
        "Cost per correct outcome",
        lambda row: row.cost_per_correct_outcome_usd,
        formatting.cost_per_correct_outcome,
    ),
    ("Outcome coverage", lambda row: row.outcome_coverage, formatting.outcome_coverage),
    (
        "Re-ingestion overhead",
        lambda row: row.reingestion_overhead,
        formatting.reingestion_overhead,
    ),
    ("Retry amplification", lambda row: row.retry_amplification, formatting.retry_amplification),
    ("Unpriced calls", lambda row: row.unpriced_calls, formatting.unpriced_calls),
)
BREACHES = "Budget breaches"


def metric_trends(rows: list[MetricsRow], days: list[str]) -> dict[str, Trend]:
    """The trend of every metrics card over ``days``, from rows grouped by day."""
    by_day = {row.day: row for row in rows if row.day is not None}
    trends = {}
    for label, value_of, text_of in _METRICS:
        values: list[float | None] = []
        texts: list[str] = []
        for day in days:
            row = by_day.get(day)
            if row is None:
                values.append(0.0 if label in _COUNTS else None)
                texts.append("0" if label in _COUNTS else f"— {NO_RUNS_THAT_DAY}")
                continue
            values.append(_number(value_of(row)))
            texts.append(_hover_text(text_of(row)))
        trends[label] = Trend(list(days), values, texts, from_zero=label in _FROM_ZERO)
    return trends


def breach_trend(found: list[BreachDay], days: list[str]) -> Trend:
    """Runs over their budget per day; a day without runs had none."""
    by_day = {item.day: item for item in found}
    values: list[float | None] = []
    texts: list[str] = []
    for day in days:
        item = by_day.get(day)
        count = item.breached_runs if item is not None else 0
        values.append(float(count))
        runs = formatting.count_text(item.runs) if item is not None else "0"
        texts.append(f"{formatting.count_text(count)} of {runs} runs over their budget")
    return Trend(list(days), values, texts, from_zero=True)


def _number(value: float | Decimal | None) -> float | None:
    # For placing a point only; the hover text comes from ``formatting``.
    return None if value is None else float(value)


def _hover_text(shown: Shown) -> str:
    return f"{shown.text} {shown.note}" if shown.undefined and shown.note else shown.text


def sparkline(trend: Trend) -> go.Figure:
    """A small line of ``trend``; undefined days break the line, and a defined day between
    two gaps gets a dot so that it still shows."""
    sizes = [
        4 if value is not None and _alone(trend.values, index) else 0
        for index, value in enumerate(trend.values)
    ]
    figure = go.Figure(
        go.Scatter(
            x=trend.days,
            y=trend.values,
            mode="lines+markers",
            connectgaps=False,
            line={"color": BLUE, "width": 1.5},
            marker={"size": sizes, "color": BLUE},
            customdata=trend.texts,
            hovertemplate="%{x|%Y-%m-%d}: %{customdata}<extra></extra>",
        )
    )
    figure.update_layout(
        template=TEMPLATE,
        height=SPARK_HEIGHT,
        margin={"l": 2, "r": 2, "t": 4, "b": 4},
        showlegend=False,
        hovermode="closest",
        xaxis={"visible": False, "type": "date", "fixedrange": True},
        yaxis={
            "visible": False,
            "fixedrange": True,
            "rangemode": "tozero" if trend.from_zero else "normal",
        },
    )
    return figure


def _alone(values: list[float | None], index: int) -> bool:
    before = values[index - 1] if index > 0 else None
    after = values[index + 1] if index + 1 < len(values) else None
    return before is None and after is None
