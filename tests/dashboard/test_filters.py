"""Filters in the URL: the same names and meanings as the query API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentledger.dashboard.filters import Filters, from_controls, parse_search
from agentledger.schemas.api import MetricsQuery, RunsQuery


def test_the_query_string_reads_as_the_api_query() -> None:
    parsed = parse_search("?workflow=triage&since=2025-03-01&until=2025-03-08T12:00:00Z&offset=50")

    assert parsed.problems == ()
    assert parsed.filters.metrics_query(["step", "tier"]) == MetricsQuery(
        group_by=["step", "tier"],
        workflow="triage",
        since=datetime(2025, 3, 1, tzinfo=UTC),
        until=datetime(2025, 3, 8, 12, tzinfo=UTC),
    )
    assert parsed.filters.runs_query(limit=25) == RunsQuery(
        workflow="triage",
        since=datetime(2025, 3, 1, tzinfo=UTC),
        until=datetime(2025, 3, 8, 12, tzinfo=UTC),
        limit=25,
        offset=50,
    )


def test_filters_survive_a_round_trip_through_the_query_string() -> None:
    filters = Filters(
        workflow="tau2 airline & co",
        since=datetime(2025, 3, 1, tzinfo=UTC),
        until=datetime(2025, 3, 8, 6, 30, tzinfo=UTC),
        project="acme",
        offset=25,
    )

    search = filters.to_search()

    assert search == (
        "?project=acme&workflow=tau2+airline+%26+co&since=2025-03-01"
        "&until=2025-03-08T06%3A30%3A00Z&offset=25"
    )
    assert parse_search(search).filters == filters


def test_no_filters_make_an_empty_query_string() -> None:
    assert Filters().to_search() == ""
    assert parse_search("").filters == Filters()
    assert parse_search(None).filters == Filters()


def test_a_time_with_a_zone_is_converted_to_utc_and_one_without_is_utc() -> None:
    zoned = parse_search("?since=2025-03-01T02:00:00%2B02:00").filters
    naive = parse_search("?since=2025-03-01T02:00:00").filters

    assert zoned.since == datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
    assert naive.since == datetime(2025, 3, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("search", "problem"),
    [
        ("?since=yesterday", "ignored since='yesterday': not an ISO date or date-time"),
        ("?until=2025-13-01", "ignored until='2025-13-01': not an ISO date or date-time"),
        ("?offset=ten", "ignored offset='ten': not a whole number"),
        ("?offset=-5", "ignored offset='-5': negative"),
        ("?since=2025-03-02&until=2025-03-01", "ignored until='2025-03-01': it is not after since"),
    ],
)
def test_an_unreadable_value_is_left_out_and_named(search: str, problem: str) -> None:
    parsed = parse_search(search)

    assert parsed.problems == (problem,)
    assert parsed.filters.offset == 0
    assert parsed.filters.until is None or parsed.filters.since is None


def test_the_picker_shows_the_last_day_included() -> None:
    filters = Filters(
        since=datetime(2025, 3, 1, tzinfo=UTC), until=datetime(2025, 3, 8, tzinfo=UTC)
    )
    midday = Filters(until=datetime(2025, 3, 8, 12, tzinfo=UTC))

    assert filters.picker_dates() == ("2025-03-01", "2025-03-07")
    assert midday.picker_dates() == (None, "2025-03-08")


def test_picked_dates_make_a_window_ending_at_the_midnight_after_the_last_day() -> None:
    filters = from_controls("?project=acme&offset=50", "triage", "2025-03-01", "2025-03-07")

    assert filters == Filters(
        workflow="triage",
        since=datetime(2025, 3, 1, tzinfo=UTC),
        until=datetime(2025, 3, 8, tzinfo=UTC),
        project="acme",
        offset=0,
    )


def test_cleared_controls_mean_all_workflows_and_all_time() -> None:
    assert from_controls("?workflow=triage&since=2025-03-01", None, None, None) == Filters()
    assert from_controls(None, "", "2025-03-01T00:00:00", None).since == datetime(
        2025, 3, 1, tzinfo=UTC
    )


def test_the_window_leaves_out_the_run_list_offset() -> None:
    filters = Filters(workflow="triage", offset=75)

    assert filters.window() == Filters(workflow="triage")
