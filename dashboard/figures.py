"""Plotly figures: the step × tier heatmap, totals over time and the waterfall of a run.

Figures colour and place by the raw API values; every text on them (labels, hovers) comes
from ``formatting``, so a chart never reads differently from the tables beside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from agentledger.dashboard import formatting
from agentledger.dashboard.headlines import Headline
from agentledger.dashboard.slices import Grid, step_label, tier_label
from agentledger.schemas.api import Attempt, Call, MetricsRow, RunDetail

FONT = "Inter, system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
BLUE = "#2563eb"
TEAL = "#0d9488"
AMBER = "#d97706"
RED = "#dc2626"
GREY = "#9ca3af"
SCALE = [[0.0, "#eff6ff"], [0.5, "#60a5fa"], [1.0, "#1e3a8a"]]

TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font={"family": FONT, "size": 12, "color": INK},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        colorway=[BLUE, TEAL, AMBER, RED, GREY],
        hoverlabel={"font": {"family": FONT, "size": 12}, "bgcolor": "white"},
        margin={"l": 16, "r": 16, "t": 24, "b": 16},
        xaxis={"gridcolor": GRID, "zerolinecolor": GRID, "automargin": True},
        yaxis={"gridcolor": GRID, "zerolinecolor": GRID, "automargin": True},
    )
)

_COLORBAR_TICKS: dict[str, dict[str, str]] = {
    "usd": {"tickprefix": "$"},
    "percent": {"tickformat": ".0%"},
    "multiple": {"ticksuffix": "×", "tickformat": ".2f"},
}


def empty(message: str, *, height: int = 220) -> go.Figure:
    """A blank figure that says why it is blank."""
    figure = go.Figure()
    figure.update_layout(
        template=TEMPLATE,
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        annotations=[
            {
                "text": message,
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "font": {"size": 14, "color": MUTED},
            }
        ],
    )
    return figure


def heatmap(grid: Grid, headline: Headline) -> go.Figure:
    """Steps down, tiers across, coloured by ``headline``; a cell without runs stays blank."""
    if not grid.cells:
        return empty("No steps in this window")

    z: list[list[float | None]] = []
    text: list[list[str]] = []
    notes: list[list[str]] = []
    for step in grid.steps:
        z_row: list[float | None] = []
        text_row: list[str] = []
        note_row: list[str] = []
        for tier in grid.tiers:
            row = grid.cells.get((step, tier))
            if row is None:
                z_row.append(None)
                text_row.append("")
                note_row.append("not run on this tier")
                continue
            shown = headline.shown(row)
            z_row.append(headline.value(row))
            text_row.append(shown.text)
            note_row.append(_hover_note(shown.note, row))
        z.append(z_row)
        text.append(text_row)
        notes.append(note_row)

    has_values = any(value is not None for z_row in z for value in z_row)
    figure = go.Figure(
        go.Heatmap(
            z=z,
            x=[tier_label(tier) for tier in grid.tiers],
            y=[step_label(step) for step in grid.steps],
            text=text,
            customdata=notes,
            texttemplate="%{text}",
            textfont={"size": 13},
            hovertemplate=(
                "<b>%{y}</b> on <b>%{x}</b><br>"
                + headline.label
                + ": %{text}<br>%{customdata}<extra></extra>"
            ),
            colorscale=SCALE,
            showscale=has_values,
            colorbar={"thickness": 12, "outlinewidth": 0, **_COLORBAR_TICKS[headline.scale]},
            xgap=3,
            ygap=3,
            hoverongaps=True,
        )
    )
    figure.update_layout(
        template=TEMPLATE,
        height=max(240, 90 + 46 * len(grid.steps)),
        xaxis={"side": "top", "title": None, "showgrid": False, "type": "category"},
        yaxis={"autorange": "reversed", "showgrid": False, "type": "category"},
    )
    return figure


def _hover_note(note: str | None, row: MetricsRow) -> str:
    runs = formatting.count_text(row.runs)
    detail = f"{runs} runs, {formatting.count_text(row.calls)} calls"
    return f"{note}<br>{detail}" if note else detail


#: One day in milliseconds, the unit of a date axis: bar widths and ticks are given in it.
DAY_MS = 86_400_000
# Days on an axis up to which every day gets its own tick.
_DAILY_TICKS_UP_TO = 14


def day_run(days: Iterable[str]) -> list[str]:
    """Every day from the earliest to the latest of ``days`` (``YYYY-MM-DD``), in order.

    Raises:
        ValueError: a day that is not ``YYYY-MM-DD``, naming it.
    """
    parsed = []
    for day in days:
        try:
            parsed.append(date.fromisoformat(day))
        except (TypeError, ValueError):
            raise ValueError(f"day {day!r} is not a YYYY-MM-DD date") from None
    if not parsed:
        return []
    first, last = min(parsed), max(parsed)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def trend(rows: list[MetricsRow]) -> go.Figure:
    """Runs, spend and cost per correct outcome per day, one panel each.

    The axis is a date axis over every day from the first to the last with runs: a bar is
    most of one day wide however few days have runs, and the cost line breaks on a day
    without runs or without a defined figure instead of joining the days around it.
    """
    by_day = {row.day: row for row in rows if row.day is not None}
    if not by_day:
        return empty("No runs in this window")

    days = day_run(by_day)
    rows = [by_day[day] for day in days if day in by_day]
    present = [row.day for row in rows]
    spend = [formatting.spend(row) for row in rows]
    line = [by_day.get(day) for day in days]
    cpco = [formatting.cost_per_correct_outcome(row) if row else None for row in line]
    bar_width = [0.8 * DAY_MS] * len(rows)

    figure = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.09,
        subplot_titles=("Runs", "Spend", "Cost per correct outcome"),
    )
    figure.add_trace(
        go.Bar(
            x=present,
            y=[row.runs for row in rows],
            width=bar_width,
            marker_color=GREY,
            name="Runs",
            text=[formatting.count_text(row.runs) for row in rows],
            hovertemplate="%{x|%Y-%m-%d}<br>%{text} runs<extra></extra>",
            textposition="none",
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Bar(
            x=present,
            y=[_as_float(row.cost_usd) for row in rows],
            width=bar_width,
            marker_color=BLUE,
            name="Spend",
            text=[shown.text for shown in spend],
            customdata=[shown.note or "" for shown in spend],
            hovertemplate="%{x|%Y-%m-%d}<br>Spend %{text}<br>%{customdata}<extra></extra>",
            textposition="none",
        ),
        row=2,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            x=days,
            y=[_as_float(row.cost_per_correct_outcome_usd) if row else None for row in line],
            mode="lines+markers",
            line={"color": TEAL, "width": 2},
            marker={"size": 7},
            connectgaps=False,
            name="Cost per correct outcome",
            text=[shown.text if shown else "—" for shown in cpco],
            customdata=[(shown.note or "") if shown else "no runs on this day" for shown in cpco],
            hovertemplate="%{x|%Y-%m-%d}<br>Cost per correct outcome %{text}<br>%{customdata}"
            "<extra></extra>",
        ),
        row=3,
        col=1,
    )
    # Days with runs where the figure is undefined get a hollow mark on the axis, so that a
    # gap reads as "undefined, hover for why" rather than as missing data or zero.
    undefined_days = [
        (day, shown)
        for day, shown in zip(days, cpco, strict=True)
        if shown is not None and shown.undefined
    ]
    if undefined_days:
        figure.add_trace(
            go.Scatter(
                x=[day for day, _ in undefined_days],
                y=[0 for _ in undefined_days],
                mode="markers",
                marker={"symbol": "x-thin-open", "size": 9, "color": GREY, "line": {"width": 2}},
                name="undefined",
                text=[shown.note or "" for _, shown in undefined_days],
                hovertemplate="%{x|%Y-%m-%d}<br>Cost per correct outcome —<br>%{text}"
                "<extra></extra>",
            ),
            row=3,
            col=1,
        )
    figure.update_layout(
        template=TEMPLATE,
        height=520,
        showlegend=False,
        margin={"t": 36},
    )
    first = date.fromisoformat(days[0]) - timedelta(days=1)
    last = date.fromisoformat(days[-1]) + timedelta(days=1)
    figure.update_xaxes(type="date", showgrid=False, range=[first.isoformat(), last.isoformat()])
    if len(days) <= _DAILY_TICKS_UP_TO:
        figure.update_xaxes(dtick=DAY_MS, tickformat="%b %d")
    figure.update_yaxes(rangemode="tozero")
    figure.update_yaxes(tickprefix="$", row=2, col=1)
    figure.update_yaxes(tickprefix="$", row=3, col=1)
    for annotation in figure.layout.annotations:
        annotation.update(x=0, xanchor="left", font={"size": 13, "color": INK})
    return figure


def _as_float(value: Decimal | None) -> float | None:
    """For placing a mark only; every text shown comes from ``formatting``."""
    return None if value is None else float(value)


@dataclass(frozen=True)
class _Bar:
    label: str
    start_seconds: float
    seconds: float
    kind: str
    text: str
    hover: str


def waterfall(run: RunDetail) -> go.Figure:
    """Attempts and their calls on a time line from the start of the run."""
    origin = formatting.as_utc(run.start_time)
    bars: list[_Bar] = []
    for attempt in sorted(run.attempts, key=lambda item: item.start_time):
        bars.append(_attempt_bar(attempt, origin))
        for call in sorted(attempt.calls, key=lambda item: item.start_time):
            bars.append(_call_bar(call, origin, indent=True))
    for call in sorted(run.calls_outside_steps, key=lambda item: item.start_time):
        bars.append(_call_bar(call, origin, indent=False))
    if not bars:
        return empty("This run recorded no steps or calls")

    # A bar of zero length would not show; give it a sliver of the run's span. Its hover
    # still gives the true duration.
    total = max((bar.start_seconds + bar.seconds for bar in bars), default=0.0)
    sliver = max(total * 0.004, 0.001)

    figure = go.Figure()
    for kind, name, colour in _WATERFALL_KINDS:
        indices = [index for index, bar in enumerate(bars) if bar.kind == kind]
        if not indices:
            continue
        figure.add_trace(
            go.Bar(
                orientation="h",
                name=name,
                y=indices,
                base=[bars[i].start_seconds for i in indices],
                x=[max(bars[i].seconds, sliver) for i in indices],
                width=0.62,
                marker={"color": colour, "line": {"width": 0}},
                text=[bars[i].text for i in indices],
                textposition="outside",
                cliponaxis=False,
                textfont={"size": 11, "color": MUTED},
                customdata=[bars[i].hover for i in indices],
                hovertemplate="%{customdata}<extra></extra>",
            )
        )
    figure.update_layout(
        template=TEMPLATE,
        height=max(220, 70 + 30 * len(bars)),
        barmode="overlay",
        bargap=0.3,
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "xanchor": "left"},
        xaxis={
            "title": {"text": "seconds since the run started", "font": {"color": MUTED}},
            "rangemode": "tozero",
        },
        yaxis={
            "autorange": "reversed",
            "tickvals": list(range(len(bars))),
            "ticktext": [bar.label for bar in bars],
            "showgrid": False,
        },
        margin={"r": 140, "t": 36},
    )
    return figure


_WATERFALL_KINDS = (
    ("accepted", "attempt used", "#c7d2fe"),
    ("discarded", "attempt discarded", "#fecaca"),
    ("llm", "model call", BLUE),
    ("tool", "tool call", AMBER),
    ("error", "failed call", RED),
)


def _offset(moment: datetime, origin: datetime) -> float:
    return (formatting.as_utc(moment) - origin).total_seconds()


def _attempt_bar(attempt: Attempt, origin: datetime) -> _Bar:
    tier = attempt.tier or "no tier"
    verdict = "used" if attempt.accepted else "discarded"
    span = attempt.end_time - attempt.start_time
    label = f"{attempt.step_name or '(step)'} · attempt {attempt.attempt} · {tier}"
    hover = (
        f"<b>{attempt.step_name}</b> attempt {attempt.attempt} on {tier} ({verdict})<br>"
        f"{formatting.duration(span)}, {len(attempt.calls)} calls"
    )
    return _Bar(
        label=label,
        start_seconds=_offset(attempt.start_time, origin),
        seconds=span.total_seconds(),
        kind="accepted" if attempt.accepted else "discarded",
        text="" if attempt.accepted else "discarded",
        hover=hover,
    )


def call_subject(call: Call) -> str:
    """What a call was made to: the model, the tool, or its span name."""
    return call.model or call.tool_name or call.name or call.kind


def _call_bar(call: Call, origin: datetime, *, indent: bool) -> _Bar:
    subject = call_subject(call)
    cost = formatting.usd(call.cost_usd, reason="no price for this model")
    input_tokens = formatting.tokens(call.input_tokens)
    output_tokens = formatting.tokens(call.output_tokens)
    span = call.end_time - call.start_time

    if call.kind == "tool":
        text = cost.text
    else:
        text = f"{input_tokens.text} in · {output_tokens.text} out · {cost.text}"
    hover_lines = [
        f"<b>{call.kind or 'call'}</b> {subject}",
        f"{formatting.duration(span)}",
        f"input {input_tokens.text}, output {output_tokens.text}",
        f"cost {cost.text}" + (f" ({call.cost_source})" if call.cost_source else ""),
    ]
    if cost.undefined and cost.note:
        hover_lines.append(cost.note)
    if call.error_type:
        hover_lines.append(f"error: {call.error_type}")

    kind = "error" if call.error_type else ("tool" if call.kind == "tool" else "llm")
    return _Bar(
        # Plotly collapses plain spaces in tick labels; no-break spaces keep the indent.
        label=("\u00a0\u00a0↳ " if indent else "") + subject,
        start_seconds=_offset(call.start_time, origin),
        seconds=span.total_seconds(),
        kind=kind,
        text=text,
        hover="<br>".join(hover_lines),
    )
