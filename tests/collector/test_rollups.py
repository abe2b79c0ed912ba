"""The rollups: a run's rows follow its spans as they arrive, late and re-delivered ones too.

Each test stores spans in steps, reads between the steps (which brings the rollups up to
date), and checks that the rows of the rollup tables and the figures read from them are
those of the spans stored so far, worked out by hand, with no row left over from an
earlier pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentledger.collector.adhoc import reads_rollups, run_read_only
from agentledger.collector.queries import StoreReader
from agentledger.collector.rollups import Rollups, rollups_of
from agentledger.collector.store import Store
from agentledger.schemas.api import MetricsQuery, RunsQuery
from tests.collector.spanrows import T0, insert_outcome, insert_spans, open_store, span


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from open_store(tmp_path_factory.mktemp("rollups"))


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    return request.node.name


def live_rows(store: Store, table: str, project: str) -> int:
    """Rows of a rollup table that a FINAL read sees (deleted ones excluded)."""
    return int(
        store.query(
            f"SELECT count() FROM {table} FINAL WHERE project = {{p:String}}", {"p": project}
        )[0][0]
    )


def test_a_second_attempt_turns_the_first_into_a_discarded_one(store: Store, project: str) -> None:
    reader = StoreReader(store)
    step = {"step_name": "draft", "step_id": "d", "project": project, "model": "m"}
    insert_spans(
        store,
        span("c1", attempt=1, input_tokens=600, output_tokens=400, cost_usd="0.002", **step),
    )
    (first,) = reader.metrics(MetricsQuery(project=project))
    # Alone, attempt 1 is the last attempt of its instance: accepted, no amplification.
    assert first.retry_amplification == 1.0

    insert_spans(
        store,
        span(
            "c2",
            attempt=2,
            input_tokens=500,
            output_tokens=300,
            cost_usd="0.0016",
            start_time=5,
            **step,
        ),
    )
    (row,) = reader.metrics(MetricsQuery(project=project))
    # (1,000 + 800) / 800 tokens, (0.002 + 0.0016) / 0.0016 dollars.
    assert row.retry_amplification == pytest.approx(1800 / 800)
    assert row.cost_retry_amplification == pytest.approx(0.0036 / 0.0016)
    assert (row.calls, row.attempts, row.runs) == (2, 2, 1)
    # One row per call and per attempt, one run row, and one group row per grain (the run,
    # and each of the seven groupings of step, tier and model) in the run's one day's
    # cells: nothing left over from the first pass.
    assert live_rows(store, "usage_rollup", project) == 2
    assert live_rows(store, "attempt_rollup", project) == 2
    assert live_rows(store, "run_rollup", project) == 1
    assert live_rows(store, "group_rollup", project) == 8
    assert live_rows(store, "metric_cells", project) == 8


def test_a_foreign_span_becomes_a_roll_up_when_its_child_arrives(
    store: Store, project: str
) -> None:
    reader = StoreReader(store)
    insert_spans(
        store,
        span("agent", kind="", model="m", input_tokens=1_000, output_tokens=100, project=project),
    )
    assert reader.metrics(MetricsQuery(project=project))[0].input_tokens == 1_000

    # Its child carries the same usage: the parent was a roll-up and stops counting.
    insert_spans(
        store,
        span(
            "chat",
            kind="",
            parent_span_id="agent",
            model="m",
            input_tokens=1_000,
            output_tokens=100,
            project=project,
        ),
    )
    (row,) = reader.metrics(MetricsQuery(project=project))
    assert (row.calls, row.input_tokens, row.output_tokens) == (1, 1_000, 100)
    span_ids = store.query(
        "SELECT span_id FROM llm_calls WHERE project = {p:String}", {"p": project}
    )
    assert [str(s).lstrip("0") for (s,) in span_ids] == ["chat"]


def test_a_late_verdict_and_a_redelivered_span_change_the_run_without_adding_to_it(
    store: Store, project: str
) -> None:
    reader = StoreReader(store)
    call = span("c", model="m", input_tokens=10, output_tokens=5, cost_usd="0.5", project=project)
    insert_spans(store, call)
    first = reader.metrics(MetricsQuery(project=project))[0]
    assert (first.known_runs, first.cost_per_correct_outcome_usd) == (0, None)

    insert_outcome(store, "r1", "correct", project=project)
    insert_spans(store, call)  # the same span delivered again
    (row,) = reader.metrics(MetricsQuery(project=project))
    assert (row.runs, row.calls, row.input_tokens) == (1, 1, 10)
    assert row.cost_per_correct_outcome_usd == Decimal("0.5")
    assert live_rows(store, "usage_rollup", project) == 1


def test_an_attempt_on_two_models_counts_once_per_grouping(store: Store, project: str) -> None:
    reader = StoreReader(store)
    step = {"step_name": "plan", "step_id": "p", "attempt": 1, "project": project}
    insert_spans(
        store,
        span("small", model="m-small", input_tokens=1, output_tokens=1, **step),
        span("big", model="m-big", input_tokens=1, output_tokens=1, start_time=1, **step),
    )
    by_step = reader.metrics(MetricsQuery(project=project, group_by=["step"]))
    assert [(r.step, r.attempts, r.calls) for r in by_step] == [("plan", 1, 2)]
    by_model = reader.metrics(MetricsQuery(project=project, group_by=["model"]))
    assert [(r.model, r.attempts, r.calls) for r in by_model] == [
        ("m-big", 1, 1),
        ("m-small", 1, 1),
    ]


def test_the_watermark_survives_a_restart(store: Store, project: str) -> None:
    insert_spans(store, span("c", model="m", input_tokens=1, output_tokens=1, project=project))
    rollups_of(store).catch_up()
    # A new process (a new Rollups) starts from the stored watermark: nothing to do.
    again = Rollups(store)
    assert again.catch_up() == 0
    insert_spans(
        store, span("d", model="m", input_tokens=1, output_tokens=1, run_id="r2", project=project)
    )
    assert again.catch_up() == 1
    before = StoreReader(store).metrics(MetricsQuery(project=project))

    # A rebuild derives every run of the store again and changes no figure.
    (pairs,) = store.query(
        "SELECT count() FROM (SELECT DISTINCT project, run_id FROM spans WHERE run_id != ''"
        " UNION DISTINCT SELECT DISTINCT project, run_id FROM outcomes)"
    )[0]
    assert rollups_of(store).rebuild() == pairs
    assert StoreReader(store).metrics(MetricsQuery(project=project)) == before
    assert live_rows(store, "run_rollup", project) == 2


def test_windows_on_and_off_midnight_add_whole_days_and_parts_of_days(
    store: Store, project: str
) -> None:
    # Three runs of 10, 20 and 40 input tokens: late on 1 March, early and late on 2 March.
    starts = {
        "a": datetime(2026, 3, 1, 23, 0, tzinfo=UTC),
        "b": datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
        "c": datetime(2026, 3, 2, 22, 0, tzinfo=UTC),
    }
    tokens = {"a": 10, "b": 20, "c": 40}
    insert_spans(
        store,
        *(
            span(
                f"c{run}",
                run_id=run,
                trace_id=run,
                model="m",
                tier="small",
                input_tokens=tokens[run],
                output_tokens=0,
                start_time=start,
                project=project,
            )
            for run, start in starts.items()
        ),
    )
    reader = StoreReader(store)

    def inputs(since: datetime | None, until: datetime | None, **extra: object) -> int:
        query = MetricsQuery(project=project, since=since, until=until, **extra)
        return sum(row.input_tokens for row in reader.metrics(query))

    def by_hand(since: datetime | None, until: datetime | None) -> int:
        return sum(
            tokens[run]
            for run, start in starts.items()
            if (since is None or start >= since) and (until is None or start < until)
        )

    moments = [
        None,
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 1, 23, 30, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 2, 0, 30, tzinfo=UTC),
        datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        datetime(2026, 3, 3, tzinfo=UTC),
    ]
    for since in moments:
        for until in moments:
            if since is not None and until is not None and until <= since:
                continue
            expected = by_hand(since, until)
            assert inputs(since, until) == expected, (since, until)
            assert inputs(since, until, tier="small") == expected, (since, until)
            grouped = reader.metrics(
                MetricsQuery(project=project, since=since, until=until, group_by=["day"])
            )
            assert sum(row.runs for row in grouped) == sum(
                1
                for start in starts.values()
                if (since is None or start >= since) and (until is None or start < until)
            )


def test_ad_hoc_sql_over_the_views_sees_what_was_just_stored(store: Store, project: str) -> None:
    insert_spans(store, span("c", model="m", input_tokens=7, output_tokens=1, project=project))
    sql = f"SELECT sum(input_tokens) FROM llm_calls WHERE project = '{project}'"
    assert reads_rollups(sql)
    assert run_read_only(store, sql).rows == [[7]]
    # A query over the spans alone reads them as stored, without a pass first.
    assert not reads_rollups("SELECT count() FROM spans")


# --- arrival order does not matter --------------------------------------------------------

_MODELS = ("m-small", "m-big", "")
_STEPS = ("plan", "draft")


@st.composite
def _agent_spans(draw: st.DrawFn) -> list[dict[str, object]]:
    """Spans of a few runs: step spans (some missing), calls with or without step ids,
    retries, tool calls, foreign usage spans that may be roll-ups, on two days."""
    rows: list[dict[str, object]] = []
    for run in range(draw(st.integers(1, 3))):
        run_id = f"r{run}"
        day = draw(st.sampled_from([0.0, 86_400.0]))
        common = {"run_id": run_id, "trace_id": run_id}
        if draw(st.booleans()):
            rows.append(span(f"{run}run", kind="run", workflow="w", start_time=day, **common))
        for index, step in enumerate(draw(st.lists(st.sampled_from(_STEPS), max_size=2))):
            attempts = draw(st.integers(1, 2))
            with_id = draw(st.booleans())
            for attempt in range(1, attempts + 1):
                step_span = f"{run}s{index}a{attempt}"
                context = {
                    "step_name": step,
                    "step_id": f"{run_id}-{index}" if with_id else "",
                    "attempt": attempt,
                    **common,
                }
                start = day + index * 10 + attempt
                if draw(st.booleans()):
                    rows.append(
                        span(step_span, kind="step", tier="mid", start_time=start, **context)
                    )
                # Some instrumentation puts the step id on the step span only.
                call_context = {
                    **context,
                    "step_id": draw(st.sampled_from([context["step_id"], ""])),
                }
                for call in range(draw(st.integers(0, 2))):
                    rows.append(
                        span(
                            f"{step_span}c{call}",
                            parent_span_id=step_span,
                            kind=draw(st.sampled_from(["llm", "llm", "tool"])),
                            model=draw(st.sampled_from(_MODELS)),
                            input_tokens=draw(st.integers(0, 50)),
                            output_tokens=draw(st.integers(0, 50)),
                            cost_usd=draw(st.sampled_from([None, "0.001", "0.25"])),
                            start_time=start + 0.1 * call,
                            **call_context,
                        )
                    )
        if draw(st.booleans()):
            # A foreign agent span with usage, and maybe a child carrying it too (a roll-up).
            rows.append(
                span(
                    f"{run}f",
                    kind="",
                    model="m-big",
                    input_tokens=9,
                    output_tokens=1,
                    start_time=day + 50,
                    **common,
                )
            )
            if draw(st.booleans()):
                rows.append(
                    span(
                        f"{run}fc",
                        kind="",
                        parent_span_id=f"{run}f",
                        model="m-big",
                        input_tokens=9,
                        output_tokens=1,
                        start_time=day + 51,
                        **common,
                    )
                )
    return rows


def _all_metrics(reader: StoreReader, project: str) -> list[list[object]]:
    groupings: list[list[str]] = [[], ["step"], ["tier"], ["model"], ["step", "tier"], ["day"]]
    windows = [(None, None), (T0 + timedelta(hours=12), None)]
    found = []
    for group_by in groupings:
        for since, until in windows:
            query = MetricsQuery(project=project, group_by=group_by, since=since, until=until)
            found.append([row.model_dump() for row in reader.metrics(query)])
    found.append([run.model_dump() for run in reader.runs(RunsQuery(project=project)).runs])
    return found


_EXAMPLES = itertools.count()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=_agent_spans(), cuts=st.lists(st.integers(0, 40), min_size=1, max_size=3), data=st.data()
)
def test_spans_arriving_in_any_order_and_batches_give_the_figures_of_one_batch(
    store: Store, rows: list[dict[str, object]], cuts: list[int], data: st.DataObject
) -> None:
    example = next(_EXAMPLES)
    reader = StoreReader(store)
    verdict_run = data.draw(st.sampled_from(["r0", "r1", "none"]))

    at_once = f"order-at-once-{example}"
    insert_spans(store, *({**row, "project": at_once} for row in rows))
    if verdict_run != "none":
        insert_outcome(store, verdict_run, "correct", project=at_once)

    # The same spans, shuffled and cut into batches, with a read (a pass) after each batch
    # and the verdict before the spans.
    piecemeal = f"order-piecemeal-{example}"
    shuffled = data.draw(st.permutations(rows))
    if verdict_run != "none":
        insert_outcome(store, verdict_run, "correct", project=piecemeal)
    bounds = sorted({0, len(shuffled), *(min(cut, len(shuffled)) for cut in cuts)})
    for start, end in itertools.pairwise(bounds):
        insert_spans(store, *({**row, "project": piecemeal} for row in shuffled[start:end]))
        reader.metrics(MetricsQuery(project=piecemeal))

    assert _all_metrics(reader, piecemeal) == _all_metrics(reader, at_once)
