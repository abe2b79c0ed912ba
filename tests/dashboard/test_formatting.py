"""How API values read on the dashboard: rounding only, and a reason for every undefined value."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from agentledger.dashboard import formatting
from agentledger.dashboard.formatting import UNDEFINED
from tests.dashboard.fakes import row


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0", "$0.00"),
        ("0.000700", "$0.000700"),
        ("0.002754", "$0.00275"),
        ("0.09", "$0.0900"),
        ("0.18", "$0.180"),
        ("0.999", "$0.999"),
        ("1", "$1.00"),
        ("12.345678", "$12.35"),
        ("1234.5", "$1,234.50"),
        ("0.0000004", "$0.000000400"),
        ("-0.5", "-$0.500"),
    ],
)
def test_dollars_keep_three_significant_digits_and_two_decimals(value: str, text: str) -> None:
    assert formatting.usd_text(Decimal(value)) == text


def test_a_cost_keeps_its_exact_value_for_the_tooltip() -> None:
    shown = formatting.usd(Decimal("0.1234567"), reason="unused")

    assert shown.text == "$0.123"
    assert shown.exact == "$0.1234567"
    assert shown.note is None


def test_an_incomplete_cost_reads_as_a_lower_bound_naming_the_unpriced_calls() -> None:
    one = formatting.usd(Decimal("0.0007"), complete=False, unpriced_calls=1, reason="unused")
    many = formatting.usd(Decimal(2), complete=False, unpriced_calls=1200, reason="unused")

    assert (one.text, one.note) == ("≥ $0.000700", "leaves out 1 unpriced call")
    assert (many.text, many.note) == ("≥ $2.00", "leaves out 1,200 unpriced calls")


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0.0%"), (2 / 3, "66.7%"), (0.5, "50.0%"), (1.0, "100.0%")],
)
def test_shares_read_as_percentages(value: float, text: str) -> None:
    assert formatting.percent(value, reason="unused").text == text


@pytest.mark.parametrize(("value", "text"), [(1.0, "1.00×"), (2.0, "2.00×"), (1.256, "1.26×")])
def test_amplifications_read_as_multiples(value: float, text: str) -> None:
    assert formatting.multiple(value, reason="unused").text == text


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf")])
def test_no_undefined_number_ever_reads_as_nan(bad: float | None) -> None:
    for shown in (
        formatting.percent(bad, reason="why"),
        formatting.multiple(bad, reason="why"),
    ):
        assert shown.text == UNDEFINED
        assert shown.note == "why"
        assert shown.undefined


def test_cost_per_correct_outcome_explains_each_way_it_can_be_undefined() -> None:
    no_runs = row()
    no_verdict = row(runs=3, calls=3, cost_usd=Decimal("0.3"))
    none_correct = row(runs=2, known_runs=2, calls=2, cost_usd=Decimal("0.18"))

    assert formatting.cost_per_correct_outcome(no_runs).note == "no runs in this window"
    assert formatting.cost_per_correct_outcome(no_verdict).note == "no run has a verdict yet"
    shown = formatting.cost_per_correct_outcome(none_correct)
    assert (shown.text, shown.note) == ("—", "no correct outcome in this window")


def test_cost_per_correct_outcome_with_unpriced_calls_is_a_lower_bound() -> None:
    sliced = row(
        runs=1,
        known_runs=1,
        correct_runs=1,
        calls=2,
        cost_usd=Decimal("0.000700"),
        unpriced_calls=1,
        cost_complete=False,
        cost_per_correct_outcome_usd=Decimal("0.000700"),
    )

    shown = formatting.cost_per_correct_outcome(sliced)

    assert shown.text == "≥ $0.000700"
    assert shown.note == "leaves out 1 unpriced call"


def test_spend_without_any_price_says_so() -> None:
    unpriced = row(runs=1, calls=1, unpriced_calls=1, cost_complete=False)

    assert (formatting.spend(unpriced).text, formatting.spend(unpriced).note) == (
        "—",
        "no priced calls",
    )
    assert formatting.spend(row()).note == "no calls in this window"


def test_rates_of_an_empty_window_say_there_were_no_runs() -> None:
    empty = row()

    assert formatting.outcome_coverage(empty).note == "no runs in this window"
    assert formatting.success_rate(empty).note == "no runs in this window"
    assert formatting.reingestion_overhead(empty).note == "no calls in this window"
    assert formatting.retry_amplification(empty).note == "no calls in this window"
    assert formatting.cost_retry_amplification(empty).note == "no calls in this window"


def test_rates_with_calls_but_no_denominator_name_the_missing_part() -> None:
    some = row(runs=2, calls=4)

    assert formatting.success_rate(some).note == "no run has a verdict yet"
    assert formatting.reingestion_overhead(some).note == (
        "no calls with a known re-ingested token count"
    )
    assert formatting.retry_amplification(some).note == "no tokens in accepted attempts"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.35, "350 ms"), (4.24, "4.2 s"), (185, "3 min 05 s"), (7620, "2 h 07 min")],
)
def test_durations_read_in_the_largest_useful_unit(seconds: float, text: str) -> None:
    assert formatting.duration(timedelta(seconds=seconds)) == text


def test_timestamps_are_shown_in_utc_and_naive_ones_are_taken_as_utc() -> None:
    aware = datetime(2025, 3, 4, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2025, 3, 4, 10, 30)

    assert formatting.timestamp(aware) == "2025-03-04 10:30:00 UTC"
    assert formatting.timestamp(naive) == "2025-03-04 10:30:00 UTC"
