"""The metric definitions of docs/metrics.md, checked on rows written straight into chDB.

Every expected value is worked out by hand in the test. Each test writes into its own
project, so that one store serves the module (chDB holds one directory per process).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from agentledger.collector.queries import StoreReader
from agentledger.collector.store import Store
from agentledger.schemas.api import MetricsQuery, MetricsRow, RunsQuery
from tests.collector.spanrows import insert_outcome, insert_spans, open_store, span


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from open_store(tmp_path_factory.mktemp("queries"))


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    return request.node.name


@pytest.fixture
def reader(store: Store) -> StoreReader:
    return StoreReader(store)


def metrics(
    reader: StoreReader, project: str, *group_by: str, **filters: object
) -> list[MetricsRow]:
    return reader.metrics(MetricsQuery(project=project, group_by=list(group_by), **filters))


def total(reader: StoreReader, project: str, **filters: object) -> MetricsRow:
    (row,) = metrics(reader, project, **filters)
    return row


# --- re-ingestion ----------------------------------------------------------------------------


def test_five_growing_steps_give_overhead_two_thirds(
    store: Store, reader: StoreReader, project: str
) -> None:
    rows = [span("run", kind="run", workflow="support", project=project)]
    for k in range(5):
        rows.append(
            span(
                f"st{k}",
                kind="step",
                parent_span_id="run",
                step_name=f"s{k}",
                step_id=f"id{k}",
                attempt=1,
                start_time=k,
                project=project,
            )
        )
        rows.append(
            span(
                f"c{k}",
                parent_span_id=f"st{k}",
                step_name=f"s{k}",
                step_id=f"id{k}",
                attempt=1,
                model="m",
                input_tokens=4_000 * (k + 1),
                output_tokens=0,
                reingested_tokens=4_000 * k,
                cost_usd="0.01",
                start_time=k,
                project=project,
            )
        )
    insert_spans(store, *rows)
    insert_outcome(store, "r1", "correct", project=project)

    row = total(reader, project)
    # 4k + 8k + 12k + 16k + 20k read; 0 + 4k + 8k + 12k + 16k of it read before.
    assert row.input_tokens == 60_000
    assert row.reingested_tokens == 40_000
    assert row.reingestion_overhead == pytest.approx(0.6667, abs=5e-5)
    assert row.retry_amplification == 1.0
    assert row.cost_retry_amplification == 1.0
    assert (row.calls, row.attempts, row.runs) == (5, 5, 1)
    assert row.cost_usd == Decimal("0.05")
    assert row.cost_per_correct_outcome_usd == Decimal("0.05")


def test_calls_with_unknown_reingestion_stay_out_of_the_overhead(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(
        store,
        span("a", model="m", input_tokens=1_000, reingested_tokens=250, project=project),
        span("b", model="m", input_tokens=3_000, reingested_tokens=None, project=project),
    )
    row = total(reader, project)
    assert row.input_tokens == 4_000
    # Only call a has a known count: 250 / 1,000.
    assert row.reingestion_overhead == 0.25


def test_overhead_is_null_without_a_known_count(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(store, span("a", model="m", input_tokens=1_000, project=project))
    assert total(reader, project).reingestion_overhead is None


# --- retries, acceptance and step instances ----------------------------------------------------


def test_retried_step_on_the_same_tier(store: Store, reader: StoreReader, project: str) -> None:
    insert_spans(
        store,
        span("run", kind="run", workflow="w", project=project),
        span(
            "st1",
            kind="step",
            step_name="draft",
            step_id="d",
            attempt=1,
            tier="mid",
            project=project,
        ),
        span(
            "c1",
            parent_span_id="st1",
            step_name="draft",
            step_id="d",
            attempt=1,
            tier="mid",
            model="m",
            input_tokens=500,
            output_tokens=500,
            cost_usd="0.002",
            project=project,
        ),
        span(
            "st2",
            kind="step",
            step_name="draft",
            step_id="d",
            attempt=2,
            tier="mid",
            start_time=5,
            project=project,
        ),
        span(
            "c2",
            parent_span_id="st2",
            step_name="draft",
            step_id="d",
            attempt=2,
            tier="mid",
            model="m",
            input_tokens=400,
            output_tokens=400,
            cost_usd="0.0016",
            start_time=5,
            project=project,
        ),
    )
    row = total(reader, project)
    # Attempt 1 has a later attempt, so it was not accepted: (1,000 + 800) / 800.
    assert row.retry_amplification == pytest.approx(1_800 / 800)
    assert row.cost_retry_amplification == pytest.approx(0.0036 / 0.0016)
    assert (row.attempts, row.calls) == (2, 2)
    assert row.cost_usd == Decimal("0.0036")

    detail = reader.run("r1", project)
    assert detail is not None
    assert [(a.attempt, a.accepted, len(a.calls)) for a in detail.attempts] == [
        (1, False, 1),
        (2, True, 1),
    ]


def test_recorded_acceptance_wins_over_the_attempt_order(
    store: Store, reader: StoreReader, project: str
) -> None:
    # Attempt 2 was tried and thrown away; attempt 1's output was used.
    insert_spans(
        store,
        span(
            "st1",
            kind="step",
            step_name="s",
            step_id="x",
            attempt=1,
            attempt_accepted=True,
            project=project,
        ),
        span(
            "c1",
            step_name="s",
            step_id="x",
            attempt=1,
            model="m",
            input_tokens=100,
            output_tokens=0,
            project=project,
        ),
        span(
            "st2",
            kind="step",
            step_name="s",
            step_id="x",
            attempt=2,
            attempt_accepted=False,
            project=project,
        ),
        span(
            "c2",
            step_name="s",
            step_id="x",
            attempt=2,
            model="m",
            input_tokens=300,
            output_tokens=0,
            project=project,
        ),
    )
    assert total(reader, project).retry_amplification == pytest.approx(400 / 100)


def test_attempts_without_step_id_pair_by_name_and_order(
    store: Store, reader: StoreReader, project: str
) -> None:
    # Two instances of "plan": attempt 1 at t=0 and t=1, one attempt 2 at t=2. The first
    # attempt 2 pairs with the first attempt 1, which therefore was not accepted. The calls
    # have no step id and belong to their parent step span.
    insert_spans(
        store,
        span("p1", kind="step", step_name="plan", attempt=1, start_time=0, project=project),
        span("p2", kind="step", step_name="plan", attempt=1, start_time=1, project=project),
        span("p3", kind="step", step_name="plan", attempt=2, start_time=2, project=project),
        span(
            "c1",
            parent_span_id="p1",
            model="m",
            input_tokens=100,
            output_tokens=0,
            start_time=0,
            project=project,
        ),
        span(
            "c2",
            parent_span_id="p2",
            model="m",
            input_tokens=200,
            output_tokens=0,
            start_time=1,
            project=project,
        ),
        span(
            "c3",
            parent_span_id="p3",
            model="m",
            input_tokens=300,
            output_tokens=0,
            start_time=2,
            project=project,
        ),
    )
    (row,) = metrics(reader, project, "step")
    assert row.step == "plan"
    assert row.attempts == 3
    # All: 600 tokens; accepted: 200 (p2) + 300 (p3).
    assert row.retry_amplification == pytest.approx(600 / 500)


def test_a_call_outside_any_step_is_its_own_accepted_attempt(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(
        store,
        span("run", kind="run", workflow="w", project=project),
        span(
            "c1", parent_span_id="run", model="m", input_tokens=10, output_tokens=5, project=project
        ),
        span(
            "c2", parent_span_id="run", model="m", input_tokens=20, output_tokens=5, project=project
        ),
    )
    row = total(reader, project)
    assert (row.calls, row.attempts) == (2, 2)
    assert row.retry_amplification == 1.0
    detail = reader.run("r1", project)
    assert detail is not None and len(detail.calls_outside_steps) == 2 and not detail.attempts


def test_cascade_by_step_and_tier(store: Store, reader: StoreReader, project: str) -> None:
    # Run r1: attempt 1 on small rejected, attempt 2 on frontier accepted; correct.
    # Run r2: extract on small, accepted at once; incorrect.
    insert_spans(
        store,
        span(
            "a1",
            kind="step",
            step_name="extract",
            step_id="e1",
            attempt=1,
            tier="small",
            attempt_accepted=False,
            project=project,
        ),
        span(
            "c1",
            parent_span_id="a1",
            step_name="extract",
            step_id="e1",
            attempt=1,
            tier="small",
            model="m-small",
            input_tokens=1_000,
            output_tokens=200,
            cost_usd="0.001",
            project=project,
        ),
        span(
            "a2",
            kind="step",
            step_name="extract",
            step_id="e1",
            attempt=2,
            tier="frontier",
            start_time=3,
            project=project,
        ),
        span(
            "c2",
            parent_span_id="a2",
            step_name="extract",
            step_id="e1",
            attempt=2,
            tier="frontier",
            model="m-frontier",
            input_tokens=1_000,
            output_tokens=300,
            cost_usd="0.01",
            start_time=3,
            project=project,
        ),
        span(
            "b1",
            kind="step",
            trace_id="t2",
            run_id="r2",
            step_name="extract",
            step_id="e2",
            attempt=1,
            tier="small",
            project=project,
        ),
        span(
            "d1",
            trace_id="t2",
            run_id="r2",
            parent_span_id="b1",
            step_name="extract",
            step_id="e2",
            attempt=1,
            tier="small",
            model="m-small",
            input_tokens=1_000,
            output_tokens=200,
            cost_usd="0.001",
            project=project,
        ),
    )
    insert_outcome(store, "r1", "correct", project=project)
    insert_outcome(store, "r2", "incorrect", project=project)

    rows = {(r.step, r.tier): r for r in metrics(reader, project, "step", "tier")}
    assert set(rows) == {("extract", "small"), ("extract", "frontier")}
    small, frontier = rows[("extract", "small")], rows[("extract", "frontier")]
    # Both runs executed extract on small; only r1 on frontier.
    assert (small.runs, small.known_runs, small.correct_runs) == (2, 2, 1)
    assert (frontier.runs, frontier.known_runs, frontier.correct_runs) == (1, 1, 1)
    # small: 0.001 (r1's rejected attempt) + 0.001 (r2) over one correct run.
    assert small.cost_per_correct_outcome_usd == Decimal("0.002")
    assert frontier.cost_per_correct_outcome_usd == Decimal("0.01")
    # small: all 1,200 + 1,200 tokens, accepted only r2's 1,200.
    assert small.retry_amplification == pytest.approx(2.0)
    assert frontier.retry_amplification == 1.0
    assert (small.attempts, frontier.attempts) == (2, 1)

    (step,) = metrics(reader, project, "step")
    # All attempts: 1,200 + 1,300 + 1,200; accepted: 1,300 + 1,200.
    assert step.retry_amplification == pytest.approx(3_700 / 2_500)
    assert step.cost_retry_amplification == pytest.approx(0.012 / 0.011)
    assert step.cost_per_correct_outcome_usd == Decimal("0.012")


def test_a_step_without_calls_still_counts_its_attempt_and_run(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(
        store,
        span("run", kind="run", workflow="w", project=project),
        span(
            "st",
            kind="step",
            step_name="validate",
            step_id="v",
            attempt=1,
            tier="small",
            project=project,
        ),
    )
    (row,) = metrics(reader, project, "step", "tier")
    assert (row.step, row.tier, row.runs, row.attempts, row.calls) == ("validate", "small", 1, 1, 0)
    assert row.cost_usd == Decimal(0)
    assert row.retry_amplification is None


def test_a_missing_step_span_is_rebuilt_from_its_calls(
    store: Store, reader: StoreReader, project: str
) -> None:
    # Attempt 1's step span never arrived; attempt 2's exists. Attempt 1 is still rejected.
    insert_spans(
        store,
        span(
            "c1",
            step_name="s",
            step_id="x",
            attempt=1,
            tier="mid",
            model="m",
            input_tokens=100,
            output_tokens=0,
            project=project,
        ),
        span(
            "st2",
            kind="step",
            step_name="s",
            step_id="x",
            attempt=2,
            tier="mid",
            start_time=2,
            project=project,
        ),
        span(
            "c2",
            parent_span_id="st2",
            step_name="s",
            step_id="x",
            attempt=2,
            tier="mid",
            model="m",
            input_tokens=100,
            output_tokens=0,
            start_time=2,
            project=project,
        ),
    )
    (row,) = metrics(reader, project, "step", "tier")
    assert (row.step, row.tier, row.attempts) == ("s", "mid", 2)
    assert row.retry_amplification == pytest.approx(2.0)


# --- runs: identity, workflow, window ------------------------------------------------------------


def test_crashed_run_without_run_span_is_counted(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(
        store,
        span(
            "st",
            kind="step",
            run_id="crash",
            step_name="plan",
            step_id="p",
            attempt=1,
            start_time=10,
            project=project,
        ),
        span(
            "c",
            run_id="crash",
            parent_span_id="st",
            workflow="crashy",
            step_name="plan",
            step_id="p",
            attempt=1,
            model="m",
            input_tokens=300,
            output_tokens=30,
            cost_usd="0.0003",
            start_time=11,
            project=project,
        ),
    )
    (row,) = metrics(reader, project, "workflow")
    assert row.workflow == "crashy"
    assert (row.runs, row.known_runs, row.calls) == (1, 0, 1)
    assert row.outcome_coverage == 0.0
    assert row.success_rate is None
    assert row.cost_per_correct_outcome_usd is None

    page = reader.runs(RunsQuery(project=project))
    assert page.total == 1
    (summary,) = page.runs
    assert (summary.run_id, summary.workflow, summary.input_tokens) == ("crash", "crashy", 300)
    # The run starts with its earliest span, the step at t=10.
    assert summary.start_time == datetime(2026, 3, 2, 9, 0, 10, tzinfo=UTC)
    detail = reader.run("crash", project)
    assert detail is not None and detail.workflow == "crashy" and detail.outcome is None


def test_the_run_span_names_the_workflow(store: Store, reader: StoreReader, project: str) -> None:
    insert_spans(
        store,
        span(
            "c", workflow="from-call", model="m", input_tokens=1, output_tokens=1, project=project
        ),
        span("run", kind="run", workflow="from-run", start_time=1, project=project),
    )
    assert [r.workflow for r in metrics(reader, project, "workflow")] == ["from-run"]
    # The filter list offers the workflows runs resolve to: the only ones a filter matches.
    assert reader.workflows(project) == ["from-run"]


def test_a_run_goes_with_the_day_and_window_of_its_start(
    store: Store, reader: StoreReader, project: str
) -> None:
    late = datetime(2026, 3, 1, 23, 59, 50, tzinfo=UTC)
    insert_spans(
        store,
        span(
            "run",
            kind="run",
            workflow="w",
            start_time=late,
            end_time=datetime(2026, 3, 2, 0, 1, tzinfo=UTC),
            project=project,
        ),
        span("c1", model="m", input_tokens=10, output_tokens=0, start_time=late, project=project),
        span(
            "c2",
            model="m",
            input_tokens=20,
            output_tokens=0,
            start_time=datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC),
            project=project,
        ),
    )
    (row,) = metrics(reader, project, "day")
    assert (row.day, row.input_tokens) == ("2026-03-01", 30)

    march_2 = datetime(2026, 3, 2, tzinfo=UTC)
    assert total(reader, project, since=march_2).runs == 0
    assert total(reader, project, until=march_2).input_tokens == 30
    # A naive bound is read as UTC; an aware one is converted.
    assert total(reader, project, until=datetime(2026, 3, 1, 23, 59, 50)).runs == 0
    assert (
        total(reader, project, since=datetime.fromisoformat("2026-03-02T00:59:50+01:00")).runs == 1
    )


# --- outcomes ------------------------------------------------------------------------------------


def test_slice_without_a_correct_run_has_no_cost_per_correct_outcome(
    store: Store, reader: StoreReader, project: str
) -> None:
    for run in ("r1", "r2"):
        insert_spans(
            store,
            span(
                f"c{run}",
                run_id=run,
                trace_id=run,
                workflow="w",
                model="m",
                input_tokens=20_000,
                output_tokens=2_000,
                cost_usd="0.09",
                project=project,
            ),
        )
        insert_outcome(store, run, "incorrect", project=project)
    row = total(reader, project)
    assert (row.runs, row.known_runs, row.correct_runs) == (2, 2, 0)
    assert row.cost_usd == Decimal("0.18")
    assert row.cost_per_correct_outcome_usd is None
    assert row.outcome_coverage == 1.0
    assert row.success_rate == 0.0

    # A later verdict marks r1 correct: the figure becomes defined for the same window.
    insert_outcome(store, "r1", "correct", project=project, decided_at=200)
    assert total(reader, project).cost_per_correct_outcome_usd == Decimal("0.18")


def test_runs_without_verdict_stay_out_of_cost_per_correct_outcome(
    store: Store, reader: StoreReader, project: str
) -> None:
    for run, cost in (("r1", "0.03"), ("r2", "0.05"), ("r3", "0.7")):
        insert_spans(
            store,
            span(
                f"c{run}",
                run_id=run,
                trace_id=run,
                model="m",
                input_tokens=1,
                output_tokens=1,
                cost_usd=cost,
                project=project,
            ),
        )
    insert_outcome(store, "r1", "correct", project=project)
    insert_outcome(store, "r2", "incorrect", project=project)
    row = total(reader, project)
    # (0.03 + 0.05) / 1; r3 has no verdict yet.
    assert row.cost_per_correct_outcome_usd == Decimal("0.08")
    assert row.cost_usd == Decimal("0.78")
    assert row.outcome_coverage == pytest.approx(2 / 3)
    assert row.success_rate == 0.5


def test_the_latest_verdict_by_its_own_time_wins(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(
        store, span("c", model="m", input_tokens=1, output_tokens=1, cost_usd="1", project=project)
    )
    # Decided later but delivered first (each insert is stamped with its own arrival).
    insert_outcome(store, "r1", "correct", project=project, decided_at=50)
    insert_outcome(store, "r1", "incorrect", project=project, decided_at=40)
    assert total(reader, project).correct_runs == 1
    # Same decision time: the later arrival wins.
    insert_outcome(store, "r1", "incorrect", project=project, decided_at=50)
    row = total(reader, project)
    assert (row.known_runs, row.correct_runs) == (1, 0)
    assert reader.runs(RunsQuery(project=project)).runs[0].outcome == "incorrect"


def test_a_redelivered_verdict_counts_once(store: Store, reader: StoreReader, project: str) -> None:
    insert_spans(store, span("c", model="m", input_tokens=1, output_tokens=1, project=project))
    for _ in range(2):
        insert_outcome(store, "r1", "correct", project=project, key="span:abc")
    row = total(reader, project)
    assert (row.runs, row.known_runs, row.correct_runs) == (1, 1, 1)


# --- counting once -----------------------------------------------------------------------------


def test_a_span_delivered_twice_counts_once_before_merges(
    store: Store, reader: StoreReader, project: str
) -> None:
    batch = [
        span(
            "st", kind="step", step_name="s", step_id="x", attempt=1, tier="small", project=project
        ),
        span(
            "c",
            parent_span_id="st",
            step_name="s",
            step_id="x",
            attempt=1,
            tier="small",
            model="m-small",
            input_tokens=1_000,
            output_tokens=100,
            cost_usd="0.0007",
            project=project,
        ),
    ]
    insert_spans(store, *batch)
    insert_spans(store, *batch)  # a second part, not merged yet
    stored = store.query("SELECT count() FROM spans WHERE project = {p:String}", {"p": project})
    assert stored == [(4,)]
    row = total(reader, project)
    assert (row.calls, row.attempts, row.input_tokens) == (1, 1, 1_000)
    assert row.cost_usd == Decimal("0.0007")
    assert row.retry_amplification == 1.0
    page = reader.runs(RunsQuery(project=project))
    assert page.runs[0].calls == 1 and page.runs[0].cost_usd == Decimal("0.0007")


def test_a_foreign_roll_up_is_not_summed(store: Store, reader: StoreReader, project: str) -> None:
    # The run span and a foreign agent span repeat the usage of three llm children. The agent
    # span arrived in another request than its children, so ingest left it counting.
    children = ((200, 114, "0.000328"), (900, 283, "0.001016"), (1_000, 455, "0.00141"))
    rows = [
        span(
            "run",
            kind="run",
            workflow="w",
            input_tokens=2_100,
            output_tokens=852,
            cost_usd="0.002754",
            project=project,
        ),
        span(
            "agent",
            kind="",
            parent_span_id="run",
            input_tokens=2_100,
            output_tokens=852,
            cost_usd="0.002754",
            project=project,
        ),
    ]
    for n, (inp, out, cost) in enumerate(children):
        rows.append(
            span(
                f"c{n}",
                parent_span_id="agent",
                model="m-small",
                input_tokens=inp,
                output_tokens=out,
                cost_usd=cost,
                project=project,
            )
        )
    insert_spans(store, *rows)

    row = total(reader, project)
    assert (row.input_tokens, row.output_tokens, row.calls) == (2_100, 852, 3)
    assert row.cost_usd == Decimal("0.002754")
    assert reader.runs(RunsQuery(project=project)).runs[0].cost_usd == Decimal("0.002754")


def test_an_innermost_foreign_span_counts(store: Store, reader: StoreReader, project: str) -> None:
    insert_spans(
        store,
        span("agent", kind="", project=project),
        span(
            "chat",
            kind="",
            parent_span_id="agent",
            model="gpt",
            input_tokens=70,
            output_tokens=7,
            project=project,
        ),
    )
    row = total(reader, project)
    assert (row.calls, row.input_tokens, row.output_tokens, row.unpriced_calls) == (1, 70, 7, 1)


# --- cost ----------------------------------------------------------------------------------------


def test_an_unpriced_call_makes_the_cost_incomplete(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(
        store,
        span(
            "a",
            model="m-small",
            input_tokens=1_000,
            output_tokens=100,
            cost_usd="0.0007",
            project=project,
        ),
        span("b", model="m-unknown", input_tokens=1_000, output_tokens=100, project=project),
    )
    insert_outcome(store, "r1", "correct", project=project)
    row = total(reader, project)
    assert row.cost_usd == Decimal("0.0007")
    assert (row.unpriced_calls, row.cost_complete) == (1, False)
    # The figure covers the priced call.
    assert row.cost_per_correct_outcome_usd == Decimal("0.0007")

    by_model = {r.model: r for r in metrics(reader, project, "model")}
    assert by_model["m-small"].cost_complete is True
    # Nothing priced in this slice: the cost is unknown, not $0.
    assert by_model["m-unknown"].cost_usd is None
    assert by_model["m-unknown"].cost_per_correct_outcome_usd is None

    (summary,) = reader.runs(RunsQuery(project=project)).runs
    assert (summary.cost_usd, summary.cost_complete) == (Decimal("0.0007"), False)


def test_tool_cost_counts_in_spend_never_in_tokens_or_calls(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(
        store,
        span(
            "llm", model="m", input_tokens=100, output_tokens=10, cost_usd="0.001", project=project
        ),
        span(
            "search",
            kind="tool",
            operation="execute_tool",
            tool_name="search",
            cost_usd="0.005",
            project=project,
        ),
        span("free", kind="tool", operation="execute_tool", tool_name="calc", project=project),
    )
    row = total(reader, project)
    assert (row.calls, row.input_tokens, row.output_tokens) == (1, 100, 10)
    assert row.cost_usd == Decimal("0.006")
    # A tool without a cost is free, not unpriced.
    assert (row.unpriced_calls, row.cost_complete) == (0, True)


def test_a_run_counts_in_each_model_group_it_has_calls_in(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(
        store,
        span("a", model="m-a", input_tokens=1, output_tokens=0, cost_usd="0.1", project=project),
        span("b", model="m-b", input_tokens=2, output_tokens=0, cost_usd="0.2", project=project),
    )
    insert_outcome(store, "r1", "correct", project=project)
    rows = {r.model: r for r in metrics(reader, project, "model")}
    assert (rows["m-a"].runs, rows["m-b"].runs, total(reader, project).runs) == (1, 1, 1)
    assert rows["m-a"].cost_per_correct_outcome_usd == Decimal("0.1")
    assert rows["m-b"].cost_per_correct_outcome_usd == Decimal("0.2")
    (only_b,) = metrics(reader, project, model="m-b")
    assert (only_b.runs, only_b.input_tokens) == (1, 2)


# --- empty and hostile input --------------------------------------------------------------------


def test_an_empty_window_gives_zeros_and_nulls(reader: StoreReader, project: str) -> None:
    row = total(reader, project)
    assert (row.runs, row.calls, row.attempts, row.input_tokens) == (0, 0, 0, 0)
    assert row.cost_usd == Decimal(0) and row.cost_complete is True
    assert row.cost_per_correct_outcome_usd is None
    assert row.outcome_coverage is None and row.success_rate is None
    assert row.reingestion_overhead is None
    assert row.retry_amplification is None and row.cost_retry_amplification is None
    assert metrics(reader, project, "tier") == []


def test_filter_values_are_bound_not_spliced(
    store: Store, reader: StoreReader, project: str
) -> None:
    insert_spans(store, span("c", workflow="w", model="m", input_tokens=1, project=project))
    assert total(reader, project, workflow="w' OR 1=1 --").runs == 0
    assert total(reader, project, model="m' OR '1'='1").calls == 0
    assert total(reader, project, workflow="w").runs == 1


def test_runs_page_newest_first(store: Store, reader: StoreReader, project: str) -> None:
    for n in range(3):
        insert_spans(
            store,
            span(
                f"c{n}",
                run_id=f"r{n}",
                trace_id=f"t{n}",
                workflow="w",
                start_time=n,
                model="m",
                input_tokens=1,
                project=project,
            ),
        )
    first = reader.runs(RunsQuery(project=project, limit=2))
    assert first.total == 3 and [r.run_id for r in first.runs] == ["r2", "r1"]
    rest = reader.runs(RunsQuery(project=project, limit=2, offset=2))
    assert [r.run_id for r in rest.runs] == ["r0"]
    assert reader.runs(RunsQuery(project=project, workflow="other")).total == 0
    assert reader.run("nope", project) is None
