"""The headline cards' trends and the "Over time" chart: one value per day, gaps not zeros."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from agentledger.dashboard import figures, overview, trends
from agentledger.dashboard.filters import Filters
from agentledger.schemas.analysis import BreachDay
from agentledger.schemas.api import BudgetQuery, BudgetReport, MetricsRow
from tests.dashboard.fakes import FakeReader, find_all, row

MARCH = Filters(
    workflow="triage",
    since=datetime(2025, 3, 1, tzinfo=UTC),
    until=datetime(2025, 4, 1, tzinfo=UTC),
    model="m-large",
)

# Two days with runs around a day without: 03-01 has 4 runs, 3 with a verdict, 2 correct,
# $0.40; 03-03 has 2 runs, 2 with a verdict, none correct, $0.10.
FIRST = row(
    day="2025-03-01",
    runs=4,
    known_runs=3,
    correct_runs=2,
    calls=8,
    attempts=8,
    cost_usd=Decimal("0.40"),
    cost_per_correct_outcome_usd=Decimal("0.20"),
    outcome_coverage=0.75,
    success_rate=2 / 3,
    reingestion_overhead=0.5,
    retry_amplification=1.25,
    cost_retry_amplification=1.5,
    unpriced_calls=1,
)
THIRD = row(
    day="2025-03-03",
    runs=2,
    known_runs=2,
    correct_runs=0,
    calls=3,
    attempts=3,
    cost_usd=Decimal("0.10"),
    outcome_coverage=1.0,
    success_rate=0.0,
    retry_amplification=1.0,
    cost_retry_amplification=1.0,
)
TOTALS = row(
    runs=6,
    known_runs=5,
    correct_runs=2,
    calls=11,
    attempts=11,
    cost_usd=Decimal("0.50"),
    cost_per_correct_outcome_usd=Decimal("0.25"),
    outcome_coverage=5 / 6,
    success_rate=0.4,
    reingestion_overhead=0.5,
    retry_amplification=1.2,
    cost_retry_amplification=1.4,
    unpriced_calls=1,
)
DAYS = ["2025-03-01", "2025-03-02", "2025-03-03"]


def test_the_run_of_days_fills_the_days_between() -> None:
    assert figures.day_run(["2025-03-03", "2025-02-27"]) == [
        "2025-02-27",
        "2025-02-28",
        "2025-03-01",
        "2025-03-02",
        "2025-03-03",
    ]
    assert figures.day_run([]) == []


def test_a_day_that_is_not_a_date_is_named() -> None:
    with pytest.raises(ValueError, match="day '2025-13-01' is not a YYYY-MM-DD date"):
        figures.day_run(["2025-03-01", "2025-13-01"])


def test_counts_are_zero_and_everything_else_a_gap_on_a_day_without_runs() -> None:
    found = trends.metric_trends([THIRD, FIRST], DAYS)

    assert found["Runs"].values == [4.0, 0.0, 2.0]
    assert found["Unpriced calls"].values == [1.0, 0.0, 0.0]
    assert found["Spend"].values == [0.40, None, 0.10]
    assert found["Success rate"].values == [pytest.approx(2 / 3), None, 0.0]
    assert found["Outcome coverage"].values == [0.75, None, 1.0]
    assert found["Retry amplification"].values == [1.25, None, 1.0]
    assert found["Spend"].texts[1] == f"— {trends.NO_RUNS_THAT_DAY}"


def test_a_figure_the_api_leaves_undefined_is_a_gap_with_its_reason() -> None:
    found = trends.metric_trends([FIRST, THIRD], DAYS)

    # 03-03 has runs but no correct one: no cost per correct outcome, and no re-ingestion.
    assert found["Cost per correct outcome"].values == [0.20, None, None]
    assert found["Cost per correct outcome"].texts == [
        "$0.200",
        f"— {trends.NO_RUNS_THAT_DAY}",
        "— no correct outcome in this window",
    ]
    assert found["Re-ingestion overhead"].values == [0.5, None, None]


def test_breaches_per_day_count_zero_on_a_day_without_runs() -> None:
    found = trends.breach_trend(
        [
            BreachDay(day="2025-03-01", runs=4, breached_runs=1),
            BreachDay(day="2025-03-03", runs=2, breached_runs=0),
        ],
        DAYS,
    )

    assert found.values == [1.0, 0.0, 0.0]
    assert found.texts[0] == "1 of 4 runs over their budget"


def test_a_sparkline_breaks_at_gaps_and_dots_a_lone_day() -> None:
    trend = trends.Trend(DAYS + ["2025-03-04"], [1.0, None, 2.0, None], ["a", "b", "c", "d"])

    figure = trends.sparkline(trend)

    (line,) = figure.data
    assert line.connectgaps is False
    assert list(line.y) == [1.0, None, 2.0, None]
    # Both defined days sit between gaps (or an edge), so each gets a dot.
    assert list(line.marker.size) == [4, 0, 4, 0]


class TrendReader(FakeReader):
    """A reader with the day rows, the budget report and breaches per day."""

    def budgets(self, query: BudgetQuery) -> BudgetReport:
        self.calls.append(("budgets", query))
        return BudgetReport(breached_runs=1, workflows=[], breaches=[], alerts=[])

    def budget_days(self, query: BudgetQuery) -> list[BreachDay]:
        self.calls.append(("budget_days", query))
        return [
            BreachDay(day="2025-03-01", runs=4, breached_runs=1),
            BreachDay(day="2025-03-03", runs=2, breached_runs=0),
        ]


def card_figures(section: Any) -> dict[str, Any]:
    """The sparkline of each card, by the card's label."""
    found = {}
    for card in find_all(section, lambda node: getattr(node, "className", None) == "al-card"):
        label = card.children[0].children
        graphs = [child for child in card.children if hasattr(child, "figure")]
        found[label] = graphs[0].figure if graphs else None
    return found


def test_every_card_carries_its_trend_from_the_day_rows_and_the_breaches() -> None:
    reader = TrendReader(metrics_by_group={(): [TOTALS], ("day",): [FIRST, THIRD]})

    section, stored = overview.kpi_section(reader, MARCH)

    assert [name for name, _ in reader.calls] == ["metrics", "metrics", "budget_days", "budgets"]
    budget_query = reader.calls[2][1]
    # Budgets belong to runs: the window and workflow apply, the model filter does not.
    assert (budget_query.workflow, budget_query.since) == ("triage", MARCH.since)
    assert [MetricsRow.model_validate(item) for item in stored] == [FIRST, THIRD]

    sparks = card_figures(section)
    assert set(sparks) == {
        "Runs",
        "Success rate",
        "Spend",
        "Cost per correct outcome",
        "Outcome coverage",
        "Re-ingestion overhead",
        "Retry amplification",
        "Unpriced calls",
        "Budget breaches",
    }
    assert list(sparks["Runs"].data[0].x) == DAYS
    assert list(sparks["Runs"].data[0].y) == [4.0, 0.0, 2.0]
    assert list(sparks["Spend"].data[0].y) == [0.4, None, 0.1]
    assert list(sparks["Budget breaches"].data[0].y) == [1.0, 0.0, 0.0]
    # No NaN anywhere: the figures must be strict JSON.
    for figure in sparks.values():
        json.dumps(figure.to_plotly_json(), allow_nan=False, default=str)


def test_a_window_of_one_day_shows_the_cards_without_a_trend() -> None:
    reader = FakeReader(metrics_by_group={(): [TOTALS], ("day",): [FIRST]})

    section, _ = overview.kpi_section(reader, MARCH)

    assert set(card_figures(section).values()) == {None}


def test_the_chart_over_time_puts_days_on_a_date_axis_with_day_wide_bars() -> None:
    figure = overview.stored_trend_figure([THIRD.model_dump(mode="json"), FIRST.model_dump()])

    runs, spend, cost_per_correct, undefined = figure.data
    assert list(runs.x) == ["2025-03-01", "2025-03-03"]
    # A bar is 0.8 of a day (in milliseconds, the unit of a date axis) however sparse.
    assert list(runs.width) == [0.8 * 86_400_000] * 2
    assert list(spend.width) == [0.8 * 86_400_000] * 2
    assert figure.layout.xaxis.type == "date"
    assert list(figure.layout.xaxis.range) == ["2025-02-28", "2025-03-04"]
    # The cost line has a point for every day and a gap on 03-02 (no runs) and on 03-03
    # (no correct outcome), never a line across them.
    assert list(cost_per_correct.x) == DAYS
    assert list(cost_per_correct.y) == [0.2, None, None]
    assert cost_per_correct.connectgaps is False
    assert list(undefined.x) == ["2025-03-03"]


def test_the_chart_over_time_of_a_stale_store_asks_for_a_reload() -> None:
    figure = overview.stored_trend_figure([{"day": "2025-03-01"}])

    assert figure.layout.annotations[0].text == "Reload the page to refresh this chart"


def test_no_value_of_a_trend_is_nan() -> None:
    found = trends.metric_trends([FIRST, THIRD], DAYS)

    for trend in found.values():
        assert all(value is None or math.isfinite(value) for value in trend.values)
