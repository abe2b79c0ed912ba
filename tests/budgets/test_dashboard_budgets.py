"""The budgets page of the dashboard, over a reader that returns a canned report."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from dash import html

from agentledger.dashboard import budgets, components
from agentledger.dashboard.app import create_dash_app, render_page
from agentledger.dashboard.filters import Filters
from agentledger.dashboard.routes import Route, budgets_href, resolve
from agentledger.schemas.api import (
    AlertRow,
    BudgetBreachRow,
    BudgetQuery,
    BudgetReport,
    BudgetUse,
)
from tests.dashboard.fakes import FakeReader

PREFIX = "/dashboard/"
T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class BudgetReader(FakeReader):
    report: BudgetReport = field(
        default_factory=lambda: BudgetReport(breached_runs=0, workflows=[], breaches=[], alerts=[])
    )

    def budgets(self, query: BudgetQuery) -> BudgetReport:
        self.calls.append(("budgets", query))
        return self.report


def use(**values: object) -> BudgetUse:
    base: dict[str, object] = {
        "workflow": "support",
        "runs": 4,
        "token_budget_runs": 3,
        "cost_budget_runs": 0,
        "budget_runs": 3,
        "breached_runs": 1,
        "token_use_p50": 0.8,
        "token_use_p95": 1.07,
        "token_use_max": 1.2,
        "cost_use_p50": None,
        "cost_use_p95": None,
        "cost_use_max": None,
    }
    return BudgetUse.model_validate({**base, **values})


BREACH = BudgetBreachRow(
    run_id="run-over",
    workflow="support",
    start_time=T,
    outcome="correct",
    tokens=12_000,
    cost_usd=Decimal("0.0400"),
    cost_complete=True,
    budget_tokens=10_000,
    budget_usd=None,
    over_tokens=True,
    over_usd=False,
    token_use=1.2,
    cost_use=None,
)
ALERT = AlertRow(
    rule="support-run-tokens",
    kind="run_tokens",
    state="firing",
    workflow="support",
    run_id="run-over",
    unit="tokens",
    threshold=Decimal(10_000),
    actual=Decimal(12_000),
    fired_at=T,
    changed_at=T,
    message="run run-over of workflow 'support' used 12,000 tokens",
)


def texts(table: components.Table, label: str) -> list[str]:
    return [cell.text for cell in table.column(label)]


def test_the_budgets_path_resolves_and_keeps_the_filters() -> None:
    assert resolve(PREFIX, "/dashboard/budgets") == Route("budgets")
    filters = Filters(workflow="support", offset=50)
    assert budgets_href(PREFIX, filters) == "/dashboard/budgets?workflow=support"


def test_use_table_shows_percentages_and_says_why_one_is_undefined() -> None:
    table = budgets.use_table([use()])
    assert texts(table, "Token use p50") == ["80.0%"]
    assert texts(table, "Token use p95") == ["107.0%"]
    assert texts(table, "Over budget") == ["1"]
    (cell,) = table.column("Cost use p95")
    assert cell.undefined
    assert cell.note == budgets.NO_COST_BUDGET


def test_breach_table_names_the_run_its_ceiling_and_actual() -> None:
    table = budgets.breach_table([BREACH], PREFIX, Filters())
    (run,) = table.column("Run")
    assert (run.text, run.href) == ("run-over", "/dashboard/runs/run-over")
    assert texts(table, "Tokens") == ["12,000"]
    assert texts(table, "Token budget") == ["10,000"]
    assert texts(table, "Token use") == ["120.0%"]
    assert texts(table, "Over") == ["tokens"]
    assert table.column("Cost budget")[0].note == "no cost budget"


def test_kpis_count_breaches_budgets_and_firing_alerts() -> None:
    report = BudgetReport(
        breached_runs=1,
        workflows=[use(), use(workflow="b", runs=2, budget_runs=0)],
        breaches=[BREACH],
        alerts=[ALERT],
    )
    cards = {kpi.label: kpi.shown for kpi in budgets.kpis(report)}
    assert cards["Runs over budget"].text == "1"
    assert (cards["Runs with a budget"].text, cards["Runs with a budget"].note) == (
        "3",
        "of 6 runs",
    )
    assert cards["Alerts firing"].text == "1"


def test_the_body_reads_once_with_the_page_filters() -> None:
    reader = BudgetReader(
        report=BudgetReport(breached_runs=1, workflows=[use()], breaches=[BREACH], alerts=[ALERT])
    )
    filters = Filters(workflow="support", since=T)
    shown = budgets.body(reader, filters, PREFIX)
    assert isinstance(shown, html.Div)
    assert reader.calls == [
        ("budgets", BudgetQuery(workflow="support", since=T, project="default"))
    ]
    assert "run-over" in str(shown)


def test_an_empty_window_says_why() -> None:
    shown = budgets.body(BudgetReader(), Filters(), PREFIX)
    assert "No runs in this window" in str(shown)


def test_the_router_renders_the_budgets_page_and_the_app_builds() -> None:
    reader = BudgetReader(workflow_names=["support"])
    rendered = render_page(reader, PREFIX, "/dashboard/budgets", "")
    assert budgets.BODY in str(rendered.page)
    create_dash_app(reader, requests_pathname_prefix=PREFIX)
