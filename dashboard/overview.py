"""The overview page: headline cards, steps × tiers, totals over time and the run list.

Each section is filled by one plain function that makes exactly one reader call and returns
what its callback outputs, so that tests call it directly with a fake reader.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import html
from dash.development.base_component import Component
from pydantic import ValidationError

from agentledger.dashboard import components, figures, formatting, slices, trends
from agentledger.dashboard.components import Column, Kpi, Table
from agentledger.dashboard.filters import Filters
from agentledger.dashboard.formatting import Shown
from agentledger.dashboard.headlines import headline
from agentledger.dashboard.routes import overview_href, run_href
from agentledger.schemas.analysis import BreachDay
from agentledger.schemas.api import (
    BudgetQuery,
    LedgerReader,
    MetricsRow,
    RunPage,
    RunSummary,
)

# --- headline cards -----------------------------------------------------------------------


def kpis(row: MetricsRow) -> list[Kpi]:
    """The headline cards of one ungrouped metrics row."""
    success = formatting.success_rate(row)
    if not success.undefined:
        success = _with_note(
            success,
            f"{formatting.count_text(row.correct_runs)} of {formatting.count_text(row.known_runs)} "
            "runs with a verdict were correct",
        )
    coverage = formatting.outcome_coverage(row)
    if not coverage.undefined:
        coverage = _with_note(
            coverage,
            f"{formatting.count_text(row.known_runs)} of {formatting.count_text(row.runs)} "
            "runs have a verdict",
        )
    unpriced = formatting.unpriced_calls(row)
    unpriced = _with_note(unpriced, f"of {formatting.count_text(row.calls)} calls")

    return [
        Kpi("Runs", formatting.runs(row)),
        Kpi("Success rate", success),
        Kpi("Spend", formatting.spend(row)),
        Kpi("Cost per correct outcome", formatting.cost_per_correct_outcome(row)),
        Kpi("Outcome coverage", coverage),
        Kpi("Re-ingestion overhead", formatting.reingestion_overhead(row)),
        Kpi("Retry amplification", formatting.retry_amplification(row)),
        Kpi("Unpriced calls", unpriced),
    ]


def _with_note(shown: Shown, note: str) -> Shown:
    return Shown(shown.text, note=note, exact=shown.exact, href=shown.href, tone=shown.tone)


def kpi_section(reader: LedgerReader, filters: Filters) -> tuple[Component, list[dict[str, Any]]]:
    """Callback outputs of the headline cards, each with its trend per day, and of the store
    of day rows that the "Over time" chart reads (so that it asks the reader nothing)."""
    rows = reader.metrics(filters.metrics_query([]))
    if not rows or rows[0].runs == 0:
        empty = components.empty_state(
            "No runs in this window",
            "Widen the time range or choose another workflow.",
        )
        return empty, []
    day_rows = reader.metrics(filters.metrics_query(["day"]))
    breach_days = budget_days(reader, filters)
    days = figures.day_run(
        [row.day for row in day_rows if row.day is not None]
        + [item.day for item in breach_days or []]
    )
    by_label = trends.metric_trends(day_rows, days)
    cards = [Kpi(kpi.label, kpi.shown, _spark(by_label.get(kpi.label))) for kpi in kpis(rows[0])]
    breaches = budget_breaches(reader, filters)
    if breaches is not None:
        trend = trends.breach_trend(breach_days, days) if breach_days is not None else None
        cards.append(Kpi(trends.BREACHES, breaches, _spark(trend)))
    stored = [row.model_dump(mode="json") for row in day_rows]
    return components.kpi_cards(cards), stored


def _spark(trend: trends.Trend | None) -> go.Figure | None:
    # One day is not a trend: the card shows its value alone.
    if trend is None or len(trend.days) < 2:
        return None
    return trends.sparkline(trend)


def budget_query(filters: Filters, limit: int = 1) -> BudgetQuery:
    """The budget filters of the overview. Budgets belong to runs: the model and tier
    filters do not apply."""
    return BudgetQuery(
        project=filters.project,
        workflow=filters.workflow,
        since=filters.since,
        until=filters.until,
        limit=limit,
    )


def budget_breaches(reader: LedgerReader, filters: Filters) -> Shown | None:
    """Runs of the window over their own budget (``reader.budgets``), or None when the
    reader has no budget report."""
    report = getattr(reader, "budgets", None)
    if report is None:
        return None
    found = report(budget_query(filters))
    count = int(found.breached_runs)
    tone = "bad" if count else None
    return Shown(formatting.count_text(count), note="runs over their budget", tone=tone)


def budget_days(reader: LedgerReader, filters: Filters) -> list[BreachDay] | None:
    """Breaches per day (``reader.budget_days``), or None when the reader cannot tell."""
    by_day = getattr(reader, "budget_days", None)
    if by_day is None:
        return None
    return list(by_day(budget_query(filters)))


# --- steps × tiers ------------------------------------------------------------------------

STEP_TIER_COLUMNS = [
    Column("Step"),
    Column("Tier"),
    Column("Runs", numeric=True, hint="runs that executed this step on this tier"),
    Column("Correct / verdict", numeric=True, hint="correct runs / runs with a verdict"),
    Column("Calls", numeric=True),
    Column("Attempts", numeric=True),
    Column("Spend", numeric=True),
    Column("Cost per correct outcome", numeric=True),
    Column("Outcome coverage", numeric=True),
    Column("Re-ingestion overhead", numeric=True),
    Column("Retry amplification (tokens)", numeric=True),
    Column("Retry amplification (cost)", numeric=True),
]


def step_tier_table(rows: list[MetricsRow]) -> Table:
    """One line per step and tier, in the heatmap's order."""
    lines = [
        [
            Shown(slices.step_label(row.step)),
            Shown(slices.tier_label(row.tier)),
            formatting.runs(row),
            formatting.correct_of_known(row),
            Shown(formatting.count_text(row.calls)),
            Shown(formatting.count_text(row.attempts)),
            formatting.spend(row),
            formatting.cost_per_correct_outcome(row),
            formatting.outcome_coverage(row),
            formatting.reingestion_overhead(row),
            formatting.retry_amplification(row),
            formatting.cost_retry_amplification(row),
        ]
        for row in slices.grid(rows).ordered_rows()
    ]
    return Table(STEP_TIER_COLUMNS, lines)


def step_tier_section(
    reader: LedgerReader, filters: Filters
) -> tuple[Component, list[dict[str, Any]]]:
    """Callback outputs of the step × tier table and of the store that the heatmap reads."""
    rows = reader.metrics(filters.metrics_query(["step", "tier"]))
    if not rows:
        empty = components.empty_state(
            "No steps in this window", "Runs whose calls ran inside steps show up here."
        )
        return empty, []
    table = components.table(step_tier_table(rows))
    stored = [row.model_dump(mode="json") for row in rows]
    return html.Div([table, components.undefined_legend()]), stored


def step_tier_heatmap(stored: list[dict[str, Any]] | None, metric: str | None) -> go.Figure:
    """Callback output of the heatmap, from the rows the table callback stored: no reader call."""
    try:
        rows = [MetricsRow.model_validate(item) for item in stored or []]
    except ValidationError:
        # The store is written by our own callback; a stale browser tab may hold an older form.
        return figures.empty("Reload the page to refresh this chart")
    return figures.heatmap(slices.grid(rows), headline(metric))


# --- totals over time ---------------------------------------------------------------------


def trend_figure(reader: LedgerReader, filters: Filters) -> go.Figure:
    """The totals per day, read afresh (the page's callback uses ``stored_trend_figure``)."""
    return figures.trend(reader.metrics(filters.metrics_query(["day"])))


def stored_trend_figure(stored: list[dict[str, Any]] | None) -> go.Figure:
    """Callback output of the totals per day, from the day rows the cards' callback stored:
    no reader call."""
    try:
        rows = [MetricsRow.model_validate(item) for item in stored or []]
    except ValidationError:
        # The store is written by our own callback; a stale browser tab may hold an older form.
        return figures.empty("Reload the page to refresh this chart")
    return figures.trend(rows)


# --- runs ---------------------------------------------------------------------------------

RUN_COLUMNS = [
    Column("Run"),
    Column("Workflow"),
    Column("Started (UTC)"),
    Column("Duration", numeric=True),
    Column("Outcome"),
    Column("Calls", numeric=True),
    Column("Input tokens", numeric=True),
    Column("Output tokens", numeric=True),
    Column("Cost", numeric=True),
    Column("Budget", numeric=True),
]
RUN_ID_CHARS = 18


def outcome(value: str | None) -> Shown:
    if value == "correct":
        return Shown("correct", tone="good")
    if value == "incorrect":
        return Shown("incorrect", tone="bad")
    return Shown(formatting.UNDEFINED, note="no verdict yet", tone="neutral")


def run_cost(run: RunSummary) -> Shown:
    reason = "no calls" if run.calls == 0 else "no priced calls"
    return formatting.usd(run.cost_usd, complete=run.cost_complete, reason=reason)


def budget(run: RunSummary) -> Shown:
    parts = []
    if run.budget_tokens is not None:
        parts.append(f"{formatting.count_text(run.budget_tokens)} tokens")
    if run.budget_usd is not None:
        parts.append(formatting.usd_text(run.budget_usd))
    if not parts:
        return formatting.undefined("no budget set")
    return Shown(" · ".join(parts))


def run_link(run_id: str, href: str) -> Shown:
    """A run id, shortened when long; the full id shows on hover."""
    text = run_id if len(run_id) <= RUN_ID_CHARS else run_id[: RUN_ID_CHARS - 1] + "…"
    return Shown(text, exact=run_id, href=href)


def runs_table(page: RunPage, prefix: str, filters: Filters) -> Table:
    lines = [
        [
            run_link(run.run_id, run_href(prefix, run.run_id, filters)),
            Shown(run.workflow or "(none)"),
            Shown(formatting.timestamp(run.start_time)),
            Shown(formatting.duration(run.end_time - run.start_time)),
            outcome(run.outcome),
            Shown(formatting.count_text(run.calls)),
            Shown(formatting.count_text(run.input_tokens)),
            Shown(formatting.count_text(run.output_tokens)),
            run_cost(run),
            budget(run),
        ]
        for run in page.runs
    ]
    return Table(RUN_COLUMNS, lines)


def pager(page: RunPage, prefix: str, filters: Filters) -> tuple[str, str | None, str | None]:
    """The "runs 26–50 of 120" line and the links to the newer and older pages, if any."""
    if not page.runs:
        # An offset past the end (an edited address): offer the way back to the first page.
        line = f"no runs on this page of {formatting.count_text(page.total)}"
        return line, overview_href(prefix, filters.with_offset(0)), None
    first = page.offset + 1
    last = page.offset + len(page.runs)
    line = (
        f"runs {formatting.count_text(first)}–{formatting.count_text(last)} "
        f"of {formatting.count_text(page.total)}"
    )
    newer = None
    if page.offset > 0:
        newer = overview_href(prefix, filters.with_offset(page.offset - page.limit))
    older = None
    if last < page.total:
        older = overview_href(prefix, filters.with_offset(last))
    return line, newer, older


def runs_section(reader: LedgerReader, filters: Filters, prefix: str) -> Component:
    """Callback output of the run list, one page of it."""
    page = reader.runs(filters.runs_query())
    if page.total == 0:
        return components.empty_state(
            "No runs in this window", "Widen the time range or choose another workflow."
        )
    line, newer, older = pager(page, prefix, filters)
    return components.run_list(
        components.table(runs_table(page, prefix, filters)), line, newer, older
    )
