"""The overview's callbacks, called directly with a fake reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from agentledger.dashboard import overview
from agentledger.dashboard.filters import Filters
from agentledger.schemas.api import MetricsQuery, RunsQuery
from tests.dashboard.fakes import START, FakeReader, row, summary, texts

PREFIX = "/dashboard/"
MARCH = Filters(
    workflow="triage",
    since=datetime(2025, 3, 1, tzinfo=UTC),
    until=datetime(2025, 4, 1, tzinfo=UTC),
)

# Ten runs, eight with a verdict, six correct; $1.234567 over 40 calls.
TOTALS = row(
    runs=10,
    known_runs=8,
    correct_runs=6,
    calls=40,
    attempts=30,
    cost_usd=Decimal("1.234567"),
    cost_per_correct_outcome_usd=Decimal("0.205761"),
    outcome_coverage=0.8,
    success_rate=0.75,
    reingestion_overhead=40000 / 60000,
    retry_amplification=1.25,
    cost_retry_amplification=1.5,
)


def shown(kpis: list[overview.Kpi]) -> dict[str, tuple[str, str | None]]:
    return {kpi.label: (kpi.shown.text, kpi.shown.note) for kpi in kpis}


def test_headline_cards_format_the_api_values() -> None:
    assert shown(overview.kpis(TOTALS)) == {
        "Runs": ("10", None),
        "Success rate": ("75.0%", "6 of 8 runs with a verdict were correct"),
        "Spend": ("$1.23", None),
        "Cost per correct outcome": ("$0.206", None),
        "Outcome coverage": ("80.0%", "8 of 10 runs have a verdict"),
        "Re-ingestion overhead": ("66.7%", None),
        "Retry amplification": ("1.25×", None),
        "Unpriced calls": ("0", "of 40 calls"),
    }


def test_two_incorrect_runs_show_spend_but_no_cost_per_correct_outcome() -> None:
    # Two incorrect runs on m-large, input 20,000 and output 2,000 each, at $3 and $15 per
    # million: 2 × (0.06 + 0.03) = $0.18, and no correct outcome to divide it by.
    incorrect = row(
        runs=2,
        known_runs=2,
        correct_runs=0,
        calls=2,
        attempts=2,
        cost_usd=Decimal("0.180000"),
        outcome_coverage=1.0,
        success_rate=0.0,
        retry_amplification=1.0,
        cost_retry_amplification=1.0,
    )

    cards = shown(overview.kpis(incorrect))

    assert cards["Spend"] == ("$0.180", None)
    assert cards["Cost per correct outcome"] == ("—", "no correct outcome in this window")
    assert cards["Success rate"] == ("0.0%", "0 of 2 runs with a verdict were correct")
    assert cards["Re-ingestion overhead"] == ("—", "no calls with a known re-ingested token count")


def test_the_card_callback_asks_for_the_totals_and_the_days_with_the_filters() -> None:
    reader = FakeReader(metrics_by_group={(): [TOTALS]})

    section, stored = overview.kpi_section(reader, MARCH)

    window = {
        "workflow": "triage",
        "since": datetime(2025, 3, 1, tzinfo=UTC),
        "until": datetime(2025, 4, 1, tzinfo=UTC),
    }
    assert reader.calls == [
        ("metrics", MetricsQuery(**window)),
        ("metrics", MetricsQuery(group_by=["day"], **window)),
    ]
    assert stored == []
    on_page = texts(section)
    for text in ("Cost per correct outcome", "$0.206", "75.0%", "66.7%", "1.25×"):
        assert text in on_page
    assert not any("nan" in text.lower() for text in on_page)


def test_an_empty_window_says_so_instead_of_showing_cards() -> None:
    section, stored = overview.kpi_section(FakeReader(), MARCH)

    assert "No runs in this window" in texts(section)
    assert stored == []


STEP_TIER_ROWS = [
    row(
        step="search",
        tier="frontier",
        runs=4,
        known_runs=4,
        correct_runs=2,
        calls=4,
        attempts=4,
        cost_usd=Decimal("0.4"),
        cost_per_correct_outcome_usd=Decimal("0.2"),
        outcome_coverage=1.0,
        reingestion_overhead=0.5,
        retry_amplification=1.0,
        cost_retry_amplification=1.0,
    ),
    row(
        step="plan",
        tier="small",
        runs=5,
        known_runs=5,
        correct_runs=0,
        calls=7,
        attempts=6,
        cost_usd=Decimal("0.0035"),
        outcome_coverage=1.0,
        reingestion_overhead=0.25,
        retry_amplification=1.4,
        cost_retry_amplification=1.2,
    ),
    row(
        step="",
        tier="",
        runs=1,
        known_runs=0,
        calls=1,
        attempts=1,
        cost_usd=Decimal("0.01"),
        outcome_coverage=0.0,
        retry_amplification=1.0,
        cost_retry_amplification=1.0,
    ),
    row(
        step="plan",
        tier="frontier",
        runs=3,
        known_runs=3,
        correct_runs=3,
        calls=3,
        attempts=3,
        cost_usd=Decimal("0.27"),
        cost_per_correct_outcome_usd=Decimal("0.09"),
        outcome_coverage=1.0,
        reingestion_overhead=None,
        retry_amplification=1.0,
        cost_retry_amplification=None,
    ),
    row(
        step="plan",
        tier="custom",
        runs=1,
        known_runs=1,
        correct_runs=1,
        calls=1,
        attempts=1,
        cost_usd=Decimal("0.5"),
        unpriced_calls=1,
        cost_complete=False,
        cost_per_correct_outcome_usd=Decimal("0.5"),
        outcome_coverage=1.0,
    ),
]


def test_step_tier_table_orders_steps_by_name_and_tiers_from_small_to_frontier() -> None:
    table = overview.step_tier_table(STEP_TIER_ROWS)

    order = [(line[0].text, line[1].text) for line in table.rows]
    assert order == [
        ("plan", "small"),
        ("plan", "frontier"),
        ("plan", "custom"),
        ("search", "frontier"),
        ("(outside steps)", "(no tier)"),
    ]


def test_step_tier_table_shows_each_headline_metric_with_reasons() -> None:
    table = overview.step_tier_table(STEP_TIER_ROWS)

    assert [c.text for c in table.column("Cost per correct outcome")] == [
        "—",
        "$0.0900",
        "≥ $0.500",
        "$0.200",
        "—",
    ]
    assert table.column("Cost per correct outcome")[0].note == "no correct outcome in this window"
    assert table.column("Cost per correct outcome")[4].note == "no run has a verdict yet"
    assert [c.text for c in table.column("Re-ingestion overhead")] == [
        "25.0%",
        "—",
        "—",
        "50.0%",
        "—",
    ]
    assert [c.text for c in table.column("Retry amplification (tokens)")] == [
        "1.40×",
        "1.00×",
        "—",
        "1.00×",
        "1.00×",
    ]
    assert [c.text for c in table.column("Retry amplification (cost)")] == [
        "1.20×",
        "—",
        "—",
        "1.00×",
        "1.00×",
    ]
    assert [c.text for c in table.column("Spend")] == [
        "$0.00350",
        "$0.270",
        "≥ $0.500",
        "$0.400",
        "$0.0100",
    ]
    assert [c.text for c in table.column("Correct / verdict")] == [
        "0 / 5",
        "3 / 3",
        "1 / 1",
        "2 / 4",
        "0 / 0",
    ]


def test_step_tier_callback_makes_one_reader_call_and_stores_the_rows_for_the_heatmap() -> None:
    reader = FakeReader(metrics_by_group={("step", "tier"): STEP_TIER_ROWS})

    table, stored = overview.step_tier_section(reader, MARCH)

    assert reader.calls == [("metrics", MARCH.metrics_query(["step", "tier"]))]
    assert "$0.0900" in texts(table)
    figure = overview.step_tier_heatmap(stored, "cost_per_correct_outcome_usd")
    heatmap = figure.data[0]
    assert list(heatmap.y) == ["plan", "search", "(outside steps)"]
    assert list(heatmap.x) == ["small", "frontier", "custom", "(no tier)"]
    assert [list(line) for line in heatmap.text] == [
        ["—", "$0.0900", "≥ $0.500", ""],
        ["", "$0.200", "", ""],
        ["", "", "", "—"],
    ]
    assert [list(line) for line in heatmap.z] == [
        [None, 0.09, 0.5, None],
        [None, 0.2, None, None],
        [None, None, None, None],
    ]
    assert reader.count("metrics") == 1  # the heatmap read the stored rows, not the reader


def test_the_heatmap_colours_by_the_chosen_metric() -> None:
    stored = [item.model_dump(mode="json") for item in STEP_TIER_ROWS]

    figure = overview.step_tier_heatmap(stored, "retry_amplification")

    assert [list(line) for line in figure.data[0].text] == [
        ["1.40×", "1.00×", "—", ""],
        ["", "1.00×", "", ""],
        ["", "", "", "1.00×"],
    ]


def test_an_empty_step_tier_window_says_so() -> None:
    table, stored = overview.step_tier_section(FakeReader(), MARCH)

    assert stored == []
    assert "No steps in this window" in texts(table)
    figure = overview.step_tier_heatmap(stored, None)
    assert figure.layout.annotations[0].text == "No steps in this window"


def test_totals_over_time_ask_by_day_and_plot_each_day() -> None:
    days = [
        row(
            day="2025-03-02", runs=4, known_runs=4, correct_runs=0, calls=8, cost_usd=Decimal("0.8")
        ),
        row(
            day="2025-03-01",
            runs=3,
            known_runs=3,
            correct_runs=2,
            calls=6,
            cost_usd=Decimal("0.6"),
            cost_per_correct_outcome_usd=Decimal("0.3"),
        ),
    ]
    reader = FakeReader(metrics_by_group={("day",): days})

    figure = overview.trend_figure(reader, MARCH)

    assert reader.calls == [("metrics", MARCH.metrics_query(["day"]))]
    runs, spend, cost_per_correct, undefined = figure.data
    assert list(runs.x) == ["2025-03-01", "2025-03-02"]
    assert list(runs.y) == [3, 4]
    assert list(spend.text) == ["$0.600", "$0.800"]
    assert list(cost_per_correct.y) == [0.3, None]
    assert list(cost_per_correct.text) == ["$0.300", "—"]
    assert list(undefined.x) == ["2025-03-02"]
    assert list(undefined.text) == ["no correct outcome in this window"]


def test_totals_over_time_of_an_empty_window_say_so() -> None:
    figure = overview.trend_figure(FakeReader(), MARCH)

    assert figure.layout.annotations[0].text == "No runs in this window"


def thirty_runs() -> list:
    return [
        summary(f"run-{index:02d}", start_time=START - timedelta(minutes=index))
        for index in range(30)
    ]


def test_the_run_list_pages_through_the_reader() -> None:
    reader = FakeReader(run_list=thirty_runs())

    first = overview.runs_section(reader, MARCH, PREFIX)
    last = overview.runs_section(reader, MARCH.with_offset(25), PREFIX)

    assert [query for _, query in reader.calls] == [
        RunsQuery(workflow="triage", since=MARCH.since, until=MARCH.until, limit=25, offset=0),
        RunsQuery(workflow="triage", since=MARCH.since, until=MARCH.until, limit=25, offset=25),
    ]
    assert "runs 1–25 of 30" in texts(first)
    assert "runs 26–30 of 30" in texts(last)


def test_pager_links_keep_the_filters_and_move_by_a_page() -> None:
    reader = FakeReader(run_list=thirty_runs())
    filters = Filters(workflow="triage")

    first = reader.runs(filters.runs_query())
    last = reader.runs(filters.with_offset(25).runs_query())

    assert overview.pager(first, PREFIX, filters) == (
        "runs 1–25 of 30",
        None,
        "/dashboard/?workflow=triage&offset=25",
    )
    assert overview.pager(last, PREFIX, filters.with_offset(25)) == (
        "runs 26–30 of 30",
        "/dashboard/?workflow=triage",
        None,
    )


def test_run_rows_link_to_their_page_and_format_each_field() -> None:
    runs = [
        summary(
            "3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f",
            outcome="correct",
            calls=12,
            input_tokens=123456,
            output_tokens=7890,
            cost_usd=Decimal("0.0123"),
            cost_complete=False,
            budget_tokens=100000,
            budget_usd=Decimal("0.5"),
        ),
        summary("short", outcome=None, end_time=START + timedelta(minutes=3, seconds=5)),
    ]
    reader = FakeReader(run_list=runs)
    filters = Filters(workflow="triage")

    table = overview.runs_table(reader.runs(filters.runs_query()), PREFIX, filters)

    long_id, short_id = table.column("Run")
    assert long_id.text == "3f2a9c1e5b7d4a6c8…"
    assert long_id.exact == "3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f"
    assert long_id.href == "/dashboard/runs/3f2a9c1e5b7d4a6c8e0f1a2b3c4d5e6f?workflow=triage"
    assert short_id.text == "short"
    assert [c.text for c in table.column("Started (UTC)")] == ["2025-03-04 10:00:00 UTC"] * 2
    assert [c.text for c in table.column("Duration")] == ["12.5 s", "3 min 05 s"]
    assert [(c.text, c.note) for c in table.column("Outcome")] == [
        ("correct", None),
        ("—", "no verdict yet"),
    ]
    assert [c.text for c in table.column("Input tokens")] == ["123,456", "0"]
    assert [(c.text, c.note) for c in table.column("Cost")] == [
        ("≥ $0.0123", "leaves out unpriced calls"),
        ("—", "no calls"),
    ]
    assert [(c.text, c.note) for c in table.column("Budget")] == [
        ("100,000 tokens · $0.500", None),
        ("—", "no budget set"),
    ]


def test_an_empty_run_list_says_so() -> None:
    assert "No runs in this window" in texts(overview.runs_section(FakeReader(), MARCH, PREFIX))


def test_an_offset_past_the_end_offers_the_way_back_to_the_first_page() -> None:
    reader = FakeReader(run_list=thirty_runs())
    filters = Filters(workflow="triage", offset=100)

    page = reader.runs(filters.runs_query())

    assert overview.pager(page, PREFIX, filters) == (
        "no runs on this page of 30",
        "/dashboard/?workflow=triage",
        None,
    )
