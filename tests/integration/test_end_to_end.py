"""SDK → OTLP/HTTP → ``agentledger serve`` → chDB → metrics API, checked by hand.

Every run reports its cost (``agentledger.cost.usd``), so the figures below do not depend on
the public price table; pricing has tests of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

import agentledger
from tests.conftest import Collector


@pytest.fixture(scope="module")
def loaded(collector: Collector) -> Iterator[Collector]:
    ledger = agentledger.Ledger("e2e-agent", endpoint=collector.url, flush_timeout_seconds=10)

    # Five steps that each add 4,000 new tokens and re-read everything before them.
    with ledger.run("e2e-reingest") as run:
        for k in range(5):
            with run.step(f"step-{k + 1}", tier="mid") as step:
                with step.llm(model="m-mid", provider="test") as call:
                    call.record_usage(
                        input_tokens=4_000 * (k + 1),
                        output_tokens=0,
                        reingested_tokens=4_000 * k,
                        cost_usd=0.01,
                    )
        run.set_outcome("correct")

    # A cascade: attempt 1 on small is rejected, attempt 2 on frontier is accepted.
    with ledger.run("e2e-cascade") as run:
        with run.step("extract", tier="small") as first:
            with first.llm(model="m-small", provider="test") as call:
                call.record_usage(input_tokens=1_000, output_tokens=200, cost_usd=0.001)
            first.reject()
        with run.retry(first, tier="frontier") as second:
            with second.llm(model="m-frontier", provider="test") as call:
                call.record_usage(input_tokens=1_000, output_tokens=300, cost_usd=0.01)
        run.set_outcome("correct")

    # A step retried on the same tier: the second attempt is accepted.
    with ledger.run("e2e-retry") as run:
        with run.step("draft", tier="mid") as first:
            with first.llm(model="m-mid", provider="test") as call:
                call.record_usage(input_tokens=500, output_tokens=500, cost_usd=0.002)
        with run.retry(first) as second:
            with second.llm(model="m-mid", provider="test") as call:
                call.record_usage(input_tokens=500, output_tokens=500, cost_usd=0.002)
        run.set_outcome("correct")

    # Two runs judged incorrect: no correct run in this workflow.
    for _ in range(2):
        with ledger.run("e2e-fail") as run:
            with run.step("answer", tier="small") as step:
                with step.llm(model="m-small", provider="test") as call:
                    call.record_usage(input_tokens=100, output_tokens=10, cost_usd=0.0005)
            run.set_outcome("incorrect")

    # A crashed agent: its calls were exported, its run span never was.
    crashed = ledger.run("e2e-crash")
    with crashed.step("plan", tier="small") as step:
        with step.llm(model="m-small", provider="test") as call:
            call.record_usage(input_tokens=300, output_tokens=30, cost_usd=0.0003)
    assert ledger.flush(timeout_seconds=10)
    yield collector


def _by_workflow(collector: Collector) -> dict[str, dict[str, object]]:
    response = collector.get("/api/v1/metrics", group_by="workflow")
    assert response.status_code == 200, response.text
    return {row["workflow"]: row for row in response.json()}


def test_reingestion_overhead_of_five_growing_steps(loaded: Collector) -> None:
    row = _by_workflow(loaded)["e2e-reingest"]
    assert row["input_tokens"] == 4_000 + 8_000 + 12_000 + 16_000 + 20_000
    assert row["reingested_tokens"] == 0 + 4_000 + 8_000 + 12_000 + 16_000
    assert row["reingestion_overhead"] == pytest.approx(40_000 / 60_000)
    assert row["retry_amplification"] == pytest.approx(1.0)
    assert Decimal(str(row["cost_usd"])) == Decimal("0.05")
    assert Decimal(str(row["cost_per_correct_outcome_usd"])) == Decimal("0.05")
    assert (row["runs"], row["known_runs"], row["correct_runs"]) == (1, 1, 1)
    assert row["calls"] == 5 and row["attempts"] == 5


def test_cascade_amplifies_tokens_and_cost(loaded: Collector) -> None:
    row = _by_workflow(loaded)["e2e-cascade"]
    # All attempts: 1,200 + 1,300 tokens; accepted: 1,300. Cost: 0.011 over 0.010.
    assert row["retry_amplification"] == pytest.approx(2_500 / 1_300)
    assert row["cost_retry_amplification"] == pytest.approx(0.011 / 0.010)
    assert row["attempts"] == 2 and row["calls"] == 2


def test_cascade_by_step_and_tier(loaded: Collector) -> None:
    response = loaded.get("/api/v1/metrics", group_by="step,tier", workflow="e2e-cascade")
    rows = {(r["step"], r["tier"]): r for r in response.json()}
    small, frontier = rows[("extract", "small")], rows[("extract", "frontier")]
    # The run executed `extract` on both tiers, so it counts in both slices.
    assert small["runs"] == frontier["runs"] == 1
    assert Decimal(str(small["cost_per_correct_outcome_usd"])) == Decimal("0.001")
    assert Decimal(str(frontier["cost_per_correct_outcome_usd"])) == Decimal("0.01")
    # Nothing accepted on small: amplification there has no denominator.
    assert small["retry_amplification"] is None
    assert frontier["retry_amplification"] == pytest.approx(1.0)


def test_retried_step_doubles_the_tokens(loaded: Collector) -> None:
    row = _by_workflow(loaded)["e2e-retry"]
    assert row["retry_amplification"] == pytest.approx(2.0)
    assert row["cost_retry_amplification"] == pytest.approx(2.0)
    assert Decimal(str(row["cost_usd"])) == Decimal("0.004")


def test_slice_without_a_correct_run_gives_null(loaded: Collector) -> None:
    row = _by_workflow(loaded)["e2e-fail"]
    assert (row["runs"], row["known_runs"], row["correct_runs"]) == (2, 2, 0)
    assert row["cost_per_correct_outcome_usd"] is None
    assert Decimal(str(row["cost_usd"])) == Decimal("0.001")
    assert row["outcome_coverage"] == pytest.approx(1.0)


def test_crashed_run_exists_without_its_run_span(loaded: Collector) -> None:
    row = _by_workflow(loaded)["e2e-crash"]
    assert (row["runs"], row["known_runs"]) == (1, 0)
    assert row["outcome_coverage"] == pytest.approx(0.0)
    assert row["cost_per_correct_outcome_usd"] is None
    runs = loaded.get("/api/v1/runs", workflow="e2e-crash").json()
    assert runs["total"] == 1
    detail = loaded.get(f"/api/v1/runs/{runs['runs'][0]['run_id']}").json()
    assert detail["workflow"] == "e2e-crash"
    assert detail["input_tokens"] == 300


def test_all_time_totals_cover_every_run(loaded: Collector) -> None:
    (total,) = loaded.get("/api/v1/metrics").json()
    assert total["runs"] == 1 + 1 + 1 + 2 + 1
    assert total["correct_runs"] == 3
    expected_cost = Decimal("0.05") + Decimal("0.011") + Decimal("0.004") + Decimal("0.001") \
        + Decimal("0.0003")
    assert Decimal(str(total["cost_usd"])) == expected_cost
    # Runs with a verdict cost 0.05 + 0.011 + 0.004 + 0.001; three of them were correct.
    assert Decimal(str(total["cost_per_correct_outcome_usd"])) == pytest.approx(
        (Decimal("0.066") / 3), abs=Decimal("1e-9"))
