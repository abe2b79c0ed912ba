"""The budgets page: runs over their own budget, how close the typical run comes to its
ceiling, and the collector's alerts.

Every figure comes from one reader call, ``reader.budgets(...)``, the same report that
``GET /api/v1/budgets`` answers with the page's filters. Use is a run's total divided by its
ceiling: 100% is exactly at the budget, above it is a breach.
"""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, html
from dash.development.base_component import Component

from agentledger.dashboard import components, formatting, overview
from agentledger.dashboard.components import Column, Kpi, Table
from agentledger.dashboard.filters import Filters, parse_search
from agentledger.dashboard.formatting import Shown
from agentledger.dashboard.routes import run_href
from agentledger.schemas.api import (
    AlertRow,
    BudgetBreachRow,
    BudgetQuery,
    BudgetReport,
    BudgetUse,
    LedgerReader,
)

#: Component id of the part of the page that follows the filters.
BODY = "budgets-body"

NO_TOKEN_BUDGET = "no run in this window carries a token budget"
NO_COST_BUDGET = "no run in this window carries a cost budget"
NO_KNOWN_COST = "no run with a cost budget has a known cost"

USE_COLUMNS = [
    Column("Workflow"),
    Column("Runs", numeric=True),
    Column("Over budget", numeric=True, hint="runs whose tokens or known cost exceeded a budget"),
    Column("With token budget", numeric=True),
    Column("Token use p50", numeric=True, hint="median of tokens ÷ token budget"),
    Column("Token use p95", numeric=True),
    Column("Token use max", numeric=True),
    Column("With cost budget", numeric=True),
    Column("Cost use p50", numeric=True, hint="median of known cost ÷ cost budget"),
    Column("Cost use p95", numeric=True),
    Column("Cost use max", numeric=True),
]
BREACH_COLUMNS = [
    Column("Run"),
    Column("Workflow"),
    Column("Started (UTC)"),
    Column("Outcome"),
    Column("Over"),
    Column("Tokens", numeric=True),
    Column("Token budget", numeric=True),
    Column("Token use", numeric=True),
    Column("Cost", numeric=True),
    Column("Cost budget", numeric=True),
    Column("Cost use", numeric=True),
]
ALERT_COLUMNS = [
    Column("State"),
    Column("Rule"),
    Column("Workflow"),
    Column("Run"),
    Column("Actual", numeric=True),
    Column("Threshold", numeric=True),
    Column("Fired (UTC)"),
    Column("Changed (UTC)"),
    Column("Message"),
]


def page() -> Component:
    """The skeleton of the page; :func:`register` fills it whenever the address changes."""
    return html.Div(
        [
            html.H1("Budgets", className="al-title"),
            html.P(
                "Runs over their own token or cost budget, how close runs come to their "
                "ceilings, and the collector's alerts.",
                className="al-subtitle",
            ),
            html.Div(id=BODY),
        ]
    )


def budget_query(filters: Filters) -> BudgetQuery:
    return BudgetQuery(
        project=filters.project,
        workflow=filters.workflow,
        since=filters.since,
        until=filters.until,
    )


def body(reader: LedgerReader, filters: Filters, prefix: str) -> Component:
    """Callback output of the page body: one reader call."""
    report = reader.budgets(budget_query(filters))
    if not report.workflows and not report.alerts:
        return components.empty_state(
            "No runs in this window", "Widen the time range or choose another workflow."
        )
    sections: list[Component] = [components.kpi_cards(kpis(report))]
    if any(use.budget_runs for use in report.workflows):
        sections.append(
            components.section(
                "How close runs come to their ceilings",
                [components.table(use_table(report.workflows)), components.undefined_legend()],
                aside="Use = a run's total ÷ its own budget; above 100% is a breach.",
            )
        )
    else:
        sections.append(
            components.empty_state(
                "No run in this window carries a budget",
                "Start runs with budget_tokens= or budget_usd= to see how close they come.",
            )
        )
    sections.append(
        components.section(
            "Runs over their budget",
            components.table(breach_table(report.breaches, prefix, filters))
            if report.breaches
            else components.empty_state("No run went over its budget in this window"),
            aside="Newest first.",
        )
    )
    sections.append(
        components.section(
            "Alerts",
            components.table(alert_table(report.alerts, prefix, filters))
            if report.alerts
            else components.empty_state(
                "No alerts",
                "The collector evaluates the rules of its alerts file (AGENTLEDGER_ALERTS_FILE).",
            ),
            aside="The latest state of each alert, newest change first.",
        )
    )
    return html.Div(sections)


def kpis(report: BudgetReport) -> list[Kpi]:
    runs = sum(use.runs for use in report.workflows)
    with_budget = sum(use.budget_runs for use in report.workflows)
    firing = sum(1 for alert in report.alerts if alert.state == "firing")
    return [
        Kpi("Runs over budget", Shown(formatting.count_text(report.breached_runs))),
        Kpi(
            "Runs with a budget",
            Shown(
                formatting.count_text(with_budget),
                note=f"of {formatting.count_text(runs)} runs",
            ),
        ),
        Kpi("Alerts firing", Shown(formatting.count_text(firing))),
    ]


def use_table(workflows: list[BudgetUse]) -> Table:
    lines = []
    for use in workflows:
        cost_reason = NO_COST_BUDGET if use.cost_budget_runs == 0 else NO_KNOWN_COST
        lines.append(
            [
                Shown(use.workflow or "(none)"),
                Shown(formatting.count_text(use.runs)),
                _breached(use.breached_runs),
                Shown(formatting.count_text(use.token_budget_runs)),
                formatting.percent(use.token_use_p50, reason=NO_TOKEN_BUDGET),
                formatting.percent(use.token_use_p95, reason=NO_TOKEN_BUDGET),
                formatting.percent(use.token_use_max, reason=NO_TOKEN_BUDGET),
                Shown(formatting.count_text(use.cost_budget_runs)),
                formatting.percent(use.cost_use_p50, reason=cost_reason),
                formatting.percent(use.cost_use_p95, reason=cost_reason),
                formatting.percent(use.cost_use_max, reason=cost_reason),
            ]
        )
    return Table(USE_COLUMNS, lines)


def breach_table(breaches: list[BudgetBreachRow], prefix: str, filters: Filters) -> Table:
    lines = []
    for row in breaches:
        over = [
            name for name, flag in (("tokens", row.over_tokens), ("cost", row.over_usd)) if flag
        ]
        lines.append(
            [
                overview.run_link(row.run_id, run_href(prefix, row.run_id, filters)),
                Shown(row.workflow or "(none)"),
                Shown(formatting.timestamp(row.start_time)),
                overview.outcome(row.outcome),
                Shown(" and ".join(over), tone="bad"),
                Shown(formatting.count_text(row.tokens)),
                _optional_count(row.budget_tokens, "no token budget"),
                formatting.percent(row.token_use, reason="no token budget"),
                formatting.usd(row.cost_usd, complete=row.cost_complete, reason="no priced calls"),
                formatting.usd(row.budget_usd, reason="no cost budget"),
                formatting.percent(row.cost_use, reason="no cost budget or no known cost"),
            ]
        )
    return Table(BREACH_COLUMNS, lines)


def alert_table(alerts: list[AlertRow], prefix: str, filters: Filters) -> Table:
    lines = []
    for alert in alerts:
        run = (
            overview.run_link(alert.run_id, run_href(prefix, alert.run_id, filters))
            if alert.run_id
            else Shown("")
        )
        lines.append(
            [
                Shown(alert.state, tone="bad" if alert.state == "firing" else "good"),
                Shown(alert.rule),
                Shown(alert.workflow or "(all)"),
                run,
                _figure(alert.actual, alert.unit, "resolved: no current figure"),
                _figure(alert.threshold, alert.unit, ""),
                Shown(formatting.timestamp(alert.fired_at)),
                Shown(formatting.timestamp(alert.changed_at)),
                Shown(alert.message),
            ]
        )
    return Table(ALERT_COLUMNS, lines)


def register(app: dash.Dash, reader: LedgerReader, prefix: str) -> None:
    """Add the callback that fills the page body from the address."""
    # Imported here: app imports this module.
    from agentledger.dashboard import layout
    from agentledger.dashboard.app import guarded

    @app.callback(Output(BODY, "children"), Input(layout.URL, "search"))
    def _body(search: str | None) -> Any:
        filters = parse_search(search).filters
        return guarded(
            "the budgets page",
            lambda: body(reader, filters, prefix),
            layout.read_failure,
        )


def _breached(count: int) -> Shown:
    text = formatting.count_text(count)
    return Shown(text, tone="bad") if count else Shown(text)


def _optional_count(value: int | None, reason: str) -> Shown:
    return formatting.undefined(reason) if value is None else Shown(formatting.count_text(value))


def _figure(value: Any, unit: str, reason: str) -> Shown:
    if value is None:
        return formatting.undefined(reason)
    if unit == "usd":
        return formatting.usd(value, reason=reason)
    if unit == "tokens":
        return Shown(f"{formatting.count_text(int(value))} tokens")
    return Shown(formatting.count_text(int(value)))
