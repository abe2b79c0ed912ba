"""The page of one run: cards, waterfall and call table from ``reader.run``."""

from __future__ import annotations

from agentledger.dashboard import figures, run_detail
from agentledger.dashboard.filters import Filters
from tests.dashboard.fakes import FakeReader, find_all, retried_run, texts

PREFIX = "/dashboard/"


def test_run_cards_show_the_run_totals_of_the_api() -> None:
    cards = {
        kpi.label: (kpi.shown.text, kpi.shown.note) for kpi in run_detail.run_kpis(retried_run())
    }

    assert cards == {
        "Outcome": ("correct", None),
        "Cost": ("$0.101", None),
        "Calls": ("3", None),
        "Input tokens": ("21,000", None),
        "Output tokens": ("2,100", None),
        "Duration": ("12.5 s", None),
        "Token budget": ("50,000", None),
        "Cost budget": ("—", "no cost budget set"),
    }


def test_the_call_table_lists_calls_in_time_order_with_their_attempt() -> None:
    table = run_detail.calls_table(retried_run())

    assert [c.text for c in table.column("Step")] == ["plan", "plan", "(outside steps)"]
    assert [c.text for c in table.column("Attempt")] == ["1", "2", ""]
    assert [c.text for c in table.column("Tier")] == ["small", "frontier", ""]
    assert [c.text for c in table.column("Used")] == ["discarded", "yes", ""]
    assert [c.text for c in table.column("Model / tool")] == ["m-small", "m-large", "web_search"]
    assert [c.text for c in table.column("Starts at")] == ["+100 ms", "+2.1 s", "+10.0 s"]
    assert [c.text for c in table.column("Input")] == ["1,000", "20,000", ""]
    assert [c.text for c in table.column("Output")] == ["100", "2,000", ""]
    assert [c.text for c in table.column("Reasoning")] == ["—", "1,000", ""]
    assert table.column("Reasoning")[0].note == "not reported"
    assert [c.text for c in table.column("Re-ingested")] == ["—", "15,000", ""]
    assert [c.text for c in table.column("Cost")] == ["$0.000700", "$0.0900", "$0.0100"]
    # The source of each cost shows on hover, with the exact figure.
    assert [c.tooltip for c in table.column("Cost")] == [
        "$0.000700 from genai-prices",
        "$0.090000 from genai-prices",
        "$0.010000 from reported",
    ]


def test_the_waterfall_has_a_bar_per_attempt_and_per_call_from_the_run_start() -> None:
    figure = figures.waterfall(retried_run())

    labels = list(figure.layout.yaxis.ticktext)
    assert labels == [
        "plan · attempt 1 · small",
        "\u00a0\u00a0↳ m-small",
        "plan · attempt 2 · frontier",
        "\u00a0\u00a0↳ m-large",
        "web_search",
    ]
    bars = {trace.name: trace for trace in figure.data}
    assert list(bars["attempt discarded"].base) == [0.0]
    assert list(bars["attempt discarded"].x) == [2.0]
    assert list(bars["attempt used"].base) == [2.0]
    assert list(bars["model call"].y) == [1, 3]
    assert list(bars["model call"].base) == [0.1, 2.1]
    assert list(bars["model call"].text) == [
        "1,000 in · 100 out · $0.000700",
        "20,000 in · 2,000 out · $0.0900",
    ]
    assert list(bars["tool call"].text) == ["$0.0100"]


def test_the_run_page_makes_one_reader_call_and_links_back_with_the_filters() -> None:
    run = retried_run()
    reader = FakeReader(details={run.run_id: run})
    filters = Filters(workflow="triage", project="acme", offset=25)

    page = run_detail.run_page(reader, run.run_id, PREFIX, filters)

    assert reader.calls == [("run", ("run-retried", "acme"))]
    (back,) = find_all(page, lambda node: getattr(node, "className", None) == "al-back")
    assert back.href == "/dashboard/?project=acme&workflow=triage&offset=25"
    assert "$0.101" in texts(page)


def test_an_unknown_run_says_it_was_not_found() -> None:
    page = run_detail.run_page(FakeReader(), "nope", PREFIX, Filters())

    assert "Run not found" in texts(page)
    assert "No run with id 'nope' is stored in project 'default'." in texts(page)


def test_a_failed_calls_error_sits_beside_its_model_not_after_the_costs() -> None:
    # Past the last column the error was cut off to "Erro…" in a window below ~1,300 px.
    run = retried_run()
    second, first = run.attempts
    failed = first.calls[0].model_copy(update={"error_type": "RateLimitError"})
    run = run.model_copy(
        update={"attempts": [second, first.model_copy(update={"calls": [failed]})]}
    )

    table = run_detail.calls_table(run)

    labels = [column.label for column in table.columns]
    assert labels.index("Error") == labels.index("Model / tool") + 1
    assert [c.text for c in table.column("Error")] == ["RateLimitError", "", ""]
    assert table.column("Error")[0].tone == "bad"
