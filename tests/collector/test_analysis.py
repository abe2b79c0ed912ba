"""The analysis queries behind the dashboard's pages, on rows written straight into chDB.

Every expected value is worked out by hand in the test. Each test writes into its own
project, so that one store serves the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentledger.collector.analysis_api import analysis_router
from agentledger.collector.queries import StoreReader
from agentledger.collector.store import Store
from agentledger.schemas.analysis import RunSearchQuery, SliceQuery
from tests.collector.spanrows import insert_outcome, insert_spans, open_store, span


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from open_store(tmp_path_factory.mktemp("analysis"))


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    return request.node.name[:60]


@pytest.fixture
def reader(store: Store) -> StoreReader:
    return StoreReader(store)


def call(span_id: str, run: str, project: str, **columns: Any) -> dict[str, Any]:
    columns.setdefault("trace_id", run)
    return span(span_id, run_id=run, project=project, model="m", **columns)


def test_tails_give_exact_quantiles_and_the_runs_at_or_above_p95(
    store: Store, reader: StoreReader, project: str
) -> None:
    # Ten runs of "w" costing $0.01 .. $0.10 and using 100 .. 1,000 tokens. quantileExact
    # takes the value at 0-based position floor(q * 10): p50 -> 6th smallest ($0.06),
    # p95 and p99 -> position 9 ($0.10).
    rows = [
        call(
            f"c{n}",
            f"r{n}",
            project,
            workflow="w",
            input_tokens=100 * n,
            cost_usd=f"0.0{n}" if n < 10 else "0.10",
            start_time=n,
        )
        for n in range(1, 11)
    ]
    insert_spans(store, *rows)
    report = reader.tails(SliceQuery(project=project))

    (row,) = report.workflows
    assert (row.runs, row.priced_runs) == (10, 10)
    assert (row.cost_p50_usd, row.cost_p95_usd, row.cost_p99_usd, row.cost_max_usd) == (
        Decimal("0.06"),
        Decimal("0.10"),
        Decimal("0.10"),
        Decimal("0.10"),
    )
    assert (row.tokens_p50, row.tokens_p95, row.tokens_max) == (600, 1_000, 1_000)
    assert [run.run_id for run in report.tail_runs] == ["r10"]


def test_predictions_correlate_with_what_was_used(
    store: Store, reader: StoreReader, project: str
) -> None:
    # Actual = 2 x predicted for three calls: a perfect linear relation, correlation 1. A
    # call without a prediction stays out.
    insert_spans(
        store,
        call("a", "r1", project, predicted_tokens=100, input_tokens=150, output_tokens=50),
        call("b", "r1", project, predicted_tokens=200, input_tokens=300, output_tokens=100),
        call("c", "r1", project, predicted_tokens=400, input_tokens=700, output_tokens=100),
        call("d", "r1", project, input_tokens=5),
    )
    report = reader.tails(SliceQuery(project=project))
    assert report.predicted_calls == 3
    assert report.prediction_correlation == pytest.approx(1.0)
    assert sorted((p.predicted_tokens, p.actual_tokens) for p in report.predictions) == [
        (100, 200),
        (200, 400),
        (400, 800),
    ]


def test_one_prediction_has_no_correlation(store: Store, reader: StoreReader, project: str) -> None:
    insert_spans(store, call("a", "r1", project, predicted_tokens=10, input_tokens=12))
    assert reader.tails(SliceQuery(project=project)).prediction_correlation is None


def test_reingestion_by_position_and_by_step(
    store: Store, reader: StoreReader, project: str
) -> None:
    # The worked example of docs/metrics.md in one run: five calls reading 4k..20k tokens,
    # of which 0, 4k, 8k, 12k, 16k were read before. A second run's only call reports no
    # count. Each call costs $0.01 and writes no output, so its re-ingested cost is
    # 0.01 x reingested / input: 0 + 0.005 + 0.00666.. + 0.0075 + 0.008.
    rows = [
        call(
            f"c{n}",
            "r1",
            project,
            step_name="s",
            tier="mid",
            input_tokens=4_000 * n,
            output_tokens=0,
            reingested_tokens=4_000 * (n - 1),
            cost_usd="0.01",
            start_time=n,
        )
        for n in range(1, 6)
    ]
    rows.append(call("x", "r2", project, step_name="s", tier="mid", input_tokens=1_000))
    insert_spans(store, *rows)
    report = reader.reingestion(SliceQuery(project=project))

    assert [
        (p.position, p.calls, p.input_tokens, p.reingested_tokens, p.fresh_tokens, p.unknown_tokens)
        for p in report.positions
    ] == [
        (1, 2, 5_000, 0, 4_000, 1_000),
        (2, 1, 8_000, 4_000, 4_000, 0),
        (3, 1, 12_000, 8_000, 4_000, 0),
        (4, 1, 16_000, 12_000, 4_000, 0),
        (5, 1, 20_000, 16_000, 4_000, 0),
    ]
    (row,) = report.slices
    assert (row.step, row.tier, row.calls, row.input_tokens) == ("s", "mid", 6, 61_000)
    assert row.reingestion_overhead == pytest.approx(40_000 / 60_000)
    expected = 0.005 + 0.01 * 8 / 12 + 0.0075 + 0.008
    assert float(row.reingested_cost_usd or 0) == pytest.approx(expected)


def test_retries_count_instances_discarded_cost_and_attempts(
    store: Store, reader: StoreReader, project: str
) -> None:
    # Instance d (step draft): attempt 1 on small ($0.002, 1,000 tokens) rejected, attempt 2
    # on frontier accepted. Instance e (draft): one attempt on small, accepted.
    def attempt(sid: str, step_id: str, n: int, tier: str, at: float) -> dict[str, Any]:
        return span(
            sid,
            kind="step",
            run_id="r1",
            step_name="draft",
            step_id=step_id,
            attempt=n,
            tier=tier,
            start_time=at,
            project=project,
        )

    insert_spans(
        store,
        attempt("d1", "d", 1, "small", 0),
        call(
            "c1",
            "r1",
            project,
            parent_span_id="d1",
            step_name="draft",
            step_id="d",
            attempt=1,
            tier="small",
            input_tokens=600,
            output_tokens=400,
            cost_usd="0.002",
        ),
        attempt("d2", "d", 2, "frontier", 1),
        call(
            "c2",
            "r1",
            project,
            parent_span_id="d2",
            step_name="draft",
            step_id="d",
            attempt=2,
            tier="frontier",
            input_tokens=900,
            cost_usd="0.01",
            start_time=1,
        ),
        attempt("e1", "e", 1, "small", 2),
        call(
            "c3",
            "r1",
            project,
            parent_span_id="e1",
            step_name="draft",
            step_id="e",
            attempt=1,
            tier="small",
            input_tokens=500,
            cost_usd="0.001",
            start_time=2,
        ),
    )
    report = reader.retries(SliceQuery(project=project))
    got = {
        r.tier: (
            r.instances,
            r.attempts,
            r.retried_instances,
            r.retry_rate,
            r.discarded_attempts,
            r.discarded_tokens,
            r.discarded_cost_usd,
        )
        for r in report.slices
    }
    assert got == {
        "frontier": (1, 1, 1, 1.0, 0, 0, Decimal(0)),
        "small": (2, 2, 1, 0.5, 1, 1_000, Decimal("0.002")),
    }
    assert [(d.step, d.attempts, d.instances) for d in report.distribution] == [
        ("draft", 1, 1),
        ("draft", 2, 1),
    ]
    small = reader.retries(SliceQuery(project=project, tier="small"))
    assert [(d.attempts, d.instances) for d in small.distribution] == [(1, 1), (2, 1)]


def test_routing_picks_the_cheapest_tier_within_the_margin(
    store: Store, reader: StoreReader, project: str
) -> None:
    # Cell (low, internal, short). small: 10 runs, 8 correct, $0.01 each -> $0.10 / 8.
    # frontier: 10 runs, 9 correct, $0.10 each -> $1.00 / 9. Best success 90%; small's 80%
    # is within 10 points but not within 5.
    rows = []
    for n in range(20):
        tier = "small" if n < 10 else "frontier"
        rows.append(
            call(
                f"c{n}",
                f"r{n}",
                project,
                tier=tier,
                task_complexity="low",
                task_sensitivity="internal",
                task_context="short",
                cost_usd="0.01" if tier == "small" else "0.10",
                input_tokens=10,
            )
        )
    insert_spans(store, *rows)
    for n in range(20):
        correct = n not in (0, 1, 10)
        insert_outcome(store, f"r{n}", "correct" if correct else "incorrect", project=project)

    wide = reader.routing(SliceQuery(project=project), margin=0.1)
    (row,) = wide.rows
    cells = {cell.tier: cell for cell in row.tiers}
    assert (cells["small"].runs, cells["small"].correct_runs) == (10, 8)
    assert cells["small"].cost_per_correct_outcome_usd == Decimal("0.10") / 8
    assert cells["frontier"].cost_per_correct_outcome_usd == Decimal("1.00") / 9
    assert row.best_success_rate == pytest.approx(0.9)
    assert row.recommended_tier == "small"

    narrow = reader.routing(SliceQuery(project=project), margin=0.05)
    assert narrow.rows[0].recommended_tier == "frontier"
    models = {(p.tier, p.model): p.correct_runs for p in narrow.models}
    assert models == {("frontier", "m"): 9, ("small", "m"): 8}


def test_routing_without_verdicts_says_why(store: Store, reader: StoreReader, project: str) -> None:
    insert_spans(store, call("c", "r1", project, tier="mid", input_tokens=1))
    (row,) = reader.routing(SliceQuery(project=project)).rows
    assert row.recommended_tier is None
    assert row.reason == "no run of this cell has a verdict"


def test_run_search_by_step_tier_and_text(store: Store, reader: StoreReader, project: str) -> None:
    # r-a ran plan on small (with a call); r-b ran plan on mid in an attempt without calls;
    # r-c has no steps.
    insert_spans(
        store,
        span(
            "sa",
            kind="step",
            run_id="r-a",
            trace_id="ta",
            step_name="plan",
            tier="small",
            workflow="alpha",
            project=project,
        ),
        call(
            "ca",
            "r-a",
            project,
            parent_span_id="sa",
            trace_id="ta",
            step_name="plan",
            tier="small",
            input_tokens=3,
            cost_usd="0.5",
        ),
        span(
            "sb",
            kind="step",
            run_id="r-b",
            trace_id="tb",
            step_name="plan",
            tier="mid",
            workflow="beta",
            project=project,
            start_time=10,
        ),
        call("cc", "r-c", project, workflow="alpha", input_tokens=1, start_time=20),
    )

    def found(**filters: Any) -> list[str]:
        page = reader.run_search(RunSearchQuery(project=project, **filters))
        return [run.run_id for run in page.runs]

    assert found() == ["r-c", "r-b", "r-a"]
    assert found(step="plan") == ["r-b", "r-a"]
    assert found(step="plan", tier="mid") == ["r-b"]
    assert found(tier="small") == ["r-a"]
    assert found(search="ALPH") == ["r-c", "r-a"]
    assert found(search="r-b") == ["r-b"]
    (run,) = reader.run_search(RunSearchQuery(project=project, search="r-a")).runs
    assert (run.workflow, run.calls, run.input_tokens, run.cost_usd) == (
        "alpha",
        1,
        3,
        Decimal("0.5"),
    )


def test_the_api_answers_with_the_same_filters(store: Store, project: str) -> None:
    insert_spans(
        store,
        call("a", "r1", project, workflow="w", tier="small", input_tokens=10, cost_usd="0.25"),
        call(
            "b",
            "r2",
            project,
            workflow="v",
            tier="mid",
            input_tokens=20,
            cost_usd="0.5",
            start_time=5,
        ),
    )
    app = FastAPI()
    app.include_router(analysis_router(StoreReader(store)))
    with TestClient(app) as client:
        tails = client.get("/api/v1/tails", params={"project": project, "tier": "small"})
        assert [row["workflow"] for row in tails.json()["workflows"]] == ["w"]
        runs = client.get("/api/v1/run_search", params={"project": project, "search": "r2"})
        assert [run["run_id"] for run in runs.json()["runs"]] == ["r2"]
        dims = client.get("/api/v1/dimensions", params={"project": project}).json()
        assert (dims["models"], dims["tiers"], dims["workflows"]) == (
            ["m"],
            ["mid", "small"],
            ["v", "w"],
        )
        bad = client.get(
            "/api/v1/routing",
            params={"project": project, "since": "2026-03-02", "until": "2026-03-01"},
        )
        assert bad.status_code == 400 and bad.json()["detail"][0]["loc"] == ["query", "until"]
        assert client.get("/api/v1/routing", params={"margin": 2}).status_code == 422
        for path in ("/api/v1/reingestion", "/api/v1/retries", "/api/v1/routing"):
            assert client.get(path, params={"project": project, "workflow": ""}).status_code == 200
