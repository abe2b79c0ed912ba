"""The ad-hoc SQL views ``llm_calls`` and ``runs``, checked on rows written straight into chDB.

Expected values are worked out by hand from docs/metrics.md. Each test writes into its own
project and filters the views on it, so that one store serves the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from agentledger.collector.rollups import rollups_of
from agentledger.collector.store import Store
from tests.collector.spanrows import insert_outcome, insert_spans, open_store, span


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from open_store(tmp_path_factory.mktemp("views"))


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    return request.node.name


def read(store: Store, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """A view read as the collector does it: after bringing the rollups up to date."""
    rollups_of(store).catch_up()
    return store.query_dicts(sql, params)


def calls(store: Store, project: str) -> list[dict[str, Any]]:
    return read(
        store,
        "SELECT * FROM llm_calls WHERE project = {p:String} ORDER BY start_time, span_id",
        {"p": project},
    )


def runs(store: Store, project: str) -> list[dict[str, Any]]:
    return read(
        store,
        "SELECT * FROM runs WHERE project = {p:String} ORDER BY start_time, run_id", {"p": project}
    )


def test_a_retried_step_marks_the_first_attempt_not_accepted(store: Store, project: str) -> None:
    # The worked example of docs/metrics.md: attempt 1 of draft (1,000 tokens, $0.002)
    # rejected, attempt 2 (800 tokens, $0.0016) accepted; the tier comes from the step span.
    step = {"step_name": "draft", "step_id": "d", "project": project}
    insert_spans(
        store,
        span("run", kind="run", workflow="w", project=project),
        span("st1", kind="step", attempt=1, tier="mid", **step),
        span(
            "c1",
            parent_span_id="st1",
            attempt=1,
            model="m",
            input_tokens=600,
            output_tokens=400,
            cost_usd="0.002",
            start_time=1,
            **step,
        ),
        span("st2", kind="step", attempt=2, tier="mid", start_time=5, **step),
        span(
            "c2",
            parent_span_id="st2",
            attempt=2,
            model="m",
            input_tokens=500,
            output_tokens=300,
            cost_usd="0.0016",
            start_time=6,
            **step,
        ),
    )
    insert_outcome(store, "r1", "correct", project=project)

    got = [
        (
            c["run_id"],
            c["workflow"],
            c["step"],
            c["attempt"],
            c["accepted"],
            c["tier"],
            c["input_tokens"],
            c["output_tokens"],
            c["cost_usd"],
        )
        for c in calls(store, project)
    ]
    assert got == [
        ("r1", "w", "draft", 1, False, "mid", 600, 400, Decimal("0.002")),
        ("r1", "w", "draft", 2, True, "mid", 500, 300, Decimal("0.0016")),
    ]
    (run,) = runs(store, project)
    assert (run["workflow"], run["outcome"], run["correct"], run["calls"]) == (
        "w",
        "correct",
        True,
        2,
    )
    assert (run["input_tokens"], run["output_tokens"], run["total_tokens"]) == (1_100, 700, 1_800)
    assert run["cost_usd"] == Decimal("0.0036")
    assert run["cost_complete"] is True


def test_recorded_acceptance_and_calls_outside_steps(store: Store, project: str) -> None:
    # Attempt 2 recorded itself as rejected, so attempt 1 stays the accepted one; the call
    # under the run span is outside any step and its own accepted attempt.
    step = {"step_name": "s", "step_id": "x", "project": project}
    insert_spans(
        store,
        span("run", kind="run", workflow="w", project=project),
        span("st1", kind="step", attempt=1, attempt_accepted=True, **step),
        span("c1", attempt=1, model="m", input_tokens=100, output_tokens=0, **step),
        span("st2", kind="step", attempt=2, attempt_accepted=False, start_time=2, **step),
        span("c2", attempt=2, model="m", input_tokens=300, output_tokens=0, start_time=2, **step),
        span("c3", parent_span_id="run", model="m", input_tokens=5, start_time=3, project=project),
    )
    got = [
        (c["span_id"][-2:], c["step"], c["in_step"], c["accepted"]) for c in calls(store, project)
    ]
    assert got == [("c1", "s", True, True), ("c2", "s", True, False), ("c3", "", False, True)]
    (outside,) = [c for c in calls(store, project) if not c["in_step"]]
    assert outside["attempt"] is None


def test_roll_ups_and_tools_are_not_llm_calls(store: Store, project: str) -> None:
    # A foreign agent span repeating its two children's usage is a roll-up; the tool's cost
    # counts in the run's cost but it is no model call.
    insert_spans(
        store,
        span("run", kind="run", workflow="w", project=project),
        span(
            "agent",
            kind="",
            parent_span_id="run",
            input_tokens=300,
            output_tokens=30,
            cost_usd="0.003",
            project=project,
        ),
        span(
            "c1",
            parent_span_id="agent",
            model="m",
            input_tokens=100,
            output_tokens=10,
            cost_usd="0.001",
            project=project,
        ),
        span(
            "c2",
            parent_span_id="agent",
            model="m",
            input_tokens=200,
            output_tokens=20,
            cost_usd="0.002",
            project=project,
            start_time=1,
        ),
        span("t1", kind="tool", tool_name="search", cost_usd="0.0005", project=project),
    )
    assert [c["span_id"][-2:] for c in calls(store, project)] == ["c1", "c2"]
    (run,) = runs(store, project)
    assert (run["calls"], run["tool_calls"], run["input_tokens"]) == (2, 1, 300)
    assert run["cost_usd"] == Decimal("0.0035")


def test_unpriced_calls_and_the_latest_verdict(store: Store, project: str) -> None:
    # Run r1: one priced, one unpriced call; a late verdict flips it to incorrect. Run r2: only
    # an unpriced call, so its cost is unknown, not zero. Run r3: no calls at all.
    insert_spans(
        store,
        span("a", run_id="r1", model="m", input_tokens=10, cost_usd="0.0007", project=project),
        span("b", run_id="r1", model="x", input_tokens=10, project=project),
        span(
            "c",
            run_id="r2",
            trace_id="t2",
            model="x",
            input_tokens=5,
            project=project,
            start_time=10,
        ),
        span("d", run_id="r3", trace_id="t3", kind="run", project=project, start_time=20),
    )
    insert_outcome(store, "r1", "correct", project=project, decided_at=100)
    insert_outcome(store, "r1", "incorrect", project=project, decided_at=200)

    by_id = {r["run_id"]: r for r in runs(store, project)}
    assert (by_id["r1"]["cost_usd"], by_id["r1"]["unpriced_calls"]) == (Decimal("0.0007"), 1)
    assert by_id["r1"]["cost_complete"] is False
    assert (by_id["r1"]["outcome"], by_id["r1"]["correct"]) == ("incorrect", False)
    assert by_id["r2"]["cost_usd"] is None
    assert by_id["r2"]["outcome"] is None
    assert (by_id["r3"]["calls"], by_id["r3"]["cost_usd"]) == (0, Decimal(0))
    unpriced = {c["span_id"][-1:]: c["unpriced"] for c in calls(store, project)}
    assert unpriced == {"a": False, "b": True, "c": True}


def test_a_redelivered_span_counts_once(store: Store, project: str) -> None:
    row = span("c1", model="m", input_tokens=7, cost_usd="0.001", project=project)
    insert_spans(store, row)
    insert_spans(store, row)  # a second part: FINAL must de-duplicate it
    assert len(calls(store, project)) == 1
    (run,) = runs(store, project)
    assert (run["input_tokens"], run["cost_usd"]) == (7, Decimal("0.001"))


def test_step_attempts_pair_instances_and_keep_attempts_without_calls(
    store: Store, project: str
) -> None:
    # "plan" has no step ids: the attempt 2 at t=2 pairs with the first attempt 1 (t=0), so
    # that one was not accepted. "check" ran on small and made no call.
    insert_spans(
        store,
        span("p1", kind="step", step_name="plan", attempt=1, tier="mid", project=project),
        span(
            "p2",
            kind="step",
            step_name="plan",
            attempt=1,
            tier="mid",
            start_time=1,
            project=project,
        ),
        span(
            "p3",
            kind="step",
            step_name="plan",
            attempt=2,
            tier="frontier",
            start_time=2,
            project=project,
        ),
        span(
            "c1", parent_span_id="p1", model="m", input_tokens=100, cost_usd="0.01", project=project
        ),
        span(
            "c3",
            parent_span_id="p3",
            model="m",
            input_tokens=300,
            cost_usd="0.03",
            start_time=2,
            project=project,
        ),
        span("k1", kind="step", step_name="check", tier="small", start_time=3, project=project),
    )
    rows = read(
        store,
        "SELECT step, attempt, accepted, tier, calls, input_tokens, cost_usd, instance"
        " FROM step_attempts WHERE project = {p:String} ORDER BY start_time",
        {"p": project},
    )
    got = [
        (
            r["step"],
            r["attempt"],
            r["accepted"],
            r["tier"],
            r["calls"],
            r["input_tokens"],
            r["cost_usd"],
        )
        for r in rows
    ]
    assert got == [
        ("plan", 1, False, "mid", 1, 100, Decimal("0.01")),
        ("plan", 1, True, "mid", 0, 0, Decimal(0)),
        ("plan", 2, True, "frontier", 1, 300, Decimal("0.03")),
        ("check", 1, True, "small", 0, 0, Decimal(0)),
    ]
    assert rows[0]["instance"] == rows[2]["instance"] != rows[1]["instance"]
