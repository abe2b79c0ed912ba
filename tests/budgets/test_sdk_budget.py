"""Run budgets inside the agent: running totals, the breach event and the three policies."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentledger
from agentledger.budget import BudgetBreach, BudgetExceeded
from agentledger.schemas import attributes as attr


@pytest.fixture(autouse=True)
def clean_context() -> Iterator[None]:
    token = otel_context.attach(otel_context.Context())
    yield
    otel_context.detach(token)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def ledger(exporter: InMemorySpanExporter) -> Iterator[agentledger.Ledger]:
    made = agentledger.Ledger("budget-agent", exporter=exporter, flush_on_run_end=False)
    yield made
    made.shutdown()


def run_span(ledger: agentledger.Ledger, exporter: InMemorySpanExporter) -> ReadableSpan:
    assert ledger.flush()
    (span,) = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(attr.SPAN_KIND) == attr.KIND_RUN
    ]
    return span


def breach_events(span: ReadableSpan) -> list[dict[str, object]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == attr.BUDGET_EXCEEDED_EVENT]


def test_third_call_over_a_10000_token_ceiling_raises_with_the_totals(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    recorded: list[int] = []
    caught: BudgetExceeded | None = None
    with ledger.run("triage", budget_tokens=10_000, on_budget="raise") as run:
        try:
            for number in (1, 2, 3, 4):
                with run.step("answer") as step, step.llm(model="m-test") as call:
                    # 3,000 in + 1,000 out = 4,000 per call: 4,000, 8,000, then 12,000.
                    call.record_usage(input_tokens=3_000, output_tokens=1_000)
                recorded.append(number)
        except BudgetExceeded as exc:
            caught = exc

    assert recorded == [1, 2]  # the exception came from the third call's record_usage
    assert caught is not None
    assert caught.run_id == run.run_id
    assert caught.limit == "tokens"
    assert caught.budget == 10_000
    assert caught.actual == 12_000
    assert caught.tokens == 12_000
    assert "12,000 tokens > budget 10,000" in str(caught)

    span = run_span(ledger, exporter)
    (event,) = breach_events(span)
    assert event[attr.BUDGET_LIMIT] == "tokens"
    assert event[attr.BUDGET_TOKENS] == 10_000
    assert event[attr.BUDGET_ACTUAL_TOKENS] == 12_000
    assert event[attr.BUDGET_POLICY] == "raise"
    # The third call's usage was recorded before the exception.
    llm_spans = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(attr.SPAN_KIND) == "llm"
    ]
    assert len(llm_spans) == 3
    assert all((s.attributes or {})[attr.INPUT_TOKENS] == 3_000 for s in llm_spans)


def test_retries_count_and_reingested_tokens_are_not_added_again(
    ledger: agentledger.Ledger,
) -> None:
    with ledger.run("triage", budget_tokens=100_000) as run:
        first = run.step("draft")
        with first, first.llm(model="m-test") as call:
            call.record_usage(input_tokens=1_000, output_tokens=200, reingested_tokens=600)
        with run.retry(first) as second, second.llm(model="m-test") as call:
            call.record_usage(input_tokens=1_500, output_tokens=300, reingested_tokens=1_200)
        assert run.budget is not None
        # (1,000 + 200) + (1,500 + 300); the re-ingested counts are parts of the input.
        assert run.budget.tokens == 3_000


def test_recording_a_call_again_replaces_its_count(ledger: agentledger.Ledger) -> None:
    with ledger.run("triage", budget_tokens=5_000, on_budget="raise") as run:
        with run.llm(model="m-test") as call:
            call.record_usage(input_tokens=2_000, output_tokens=500)
            call.record_usage(input_tokens=2_500, output_tokens=600)
        assert run.budget is not None
        assert run.budget.tokens == 3_100


def test_warn_is_the_default_and_reports_each_ceiling_once(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="agentledger.budget")
    with ledger.run("triage", budget_tokens=1_000) as run:
        for _ in range(3):
            with run.llm(model="m-test") as call:
                call.record_usage(input_tokens=600, output_tokens=0)

    warnings = [r.getMessage() for r in caplog.records if "over its budget" in r.getMessage()]
    expected = (
        f"agentledger: run {run.run_id} of workflow 'triage' is over its budget: "
        "1,200 tokens > budget 1,000"
    )
    assert warnings == [expected]
    (event,) = breach_events(run_span(ledger, exporter))
    assert event[attr.BUDGET_POLICY] == "warn"
    assert event[attr.BUDGET_ACTUAL_TOKENS] == 1_200


def test_a_callback_gets_the_breach_and_the_agent_goes_on(ledger: agentledger.Ledger) -> None:
    seen: list[BudgetBreach] = []
    with ledger.run("triage", budget_usd=0.01, on_budget=seen.append) as run:
        with run.llm(model="m-test") as call:
            call.record_usage(input_tokens=10, output_tokens=10, cost_usd=0.004)
        with run.tool("search", cost_usd=0.005):
            pass
        with run.llm(model="m-test") as call:
            call.record_usage(input_tokens=10, output_tokens=10, cost_usd=0.002)
        with run.llm(model="m-test") as call:
            call.record_usage(input_tokens=10, output_tokens=10, cost_usd=0.002)

    # 0.004 + 0.005 = 0.009, + 0.002 = 0.011 > 0.01: reported once, on the third record.
    (breach,) = seen
    assert breach.limit == "usd"
    assert breach.budget == Decimal("0.01")
    assert breach.actual == Decimal("0.011")
    assert breach.run_id == run.run_id
    assert breach.workflow == "triage"


def test_cost_is_priced_with_genai_prices_when_not_reported(ledger: agentledger.Ledger) -> None:
    with ledger.run("triage", budget_usd=1.0) as run:
        with run.llm(model="gpt-4o-mini", provider="openai") as call:
            call.record_usage(input_tokens=1_000_000, output_tokens=1_000_000)
        assert run.budget is not None
        # gpt-4o-mini: $0.15 per million input tokens and $0.60 per million output tokens.
        assert run.budget.cost_usd == Decimal("0.75")
        assert run.budget.unpriced_calls == 0


def test_an_unknown_price_is_left_out_and_counted(
    ledger: agentledger.Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agentledger.budget")
    with ledger.run("triage", budget_usd=0.001, on_budget="raise") as run:
        with run.llm(model="m-unknown-private", provider="self-hosted") as call:
            call.record_usage(input_tokens=50_000, output_tokens=5_000)
        with run.llm(model="m-unknown-private", provider="self-hosted") as call:
            call.record_usage(input_tokens=50_000, output_tokens=5_000)
        assert run.budget is not None
        assert run.budget.cost_usd == 0
        assert run.budget.unpriced_calls == 2
    notes = [r.getMessage() for r in caplog.records if "no price known" in r.getMessage()]
    assert len(notes) <= 1  # noted once per model (or earlier in this process)


def test_a_tool_cost_that_crosses_raises_from_record_cost(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with (
        ledger.run("triage", budget_usd=0.5, on_budget="raise") as run,
        run.tool("sandbox") as tool,
        pytest.raises(BudgetExceeded, match=r"\$0\.6 > budget"),
    ):
        tool.record_cost(0.6)
    (event,) = breach_events(run_span(ledger, exporter))
    assert event[attr.BUDGET_ACTUAL_USD] == pytest.approx(0.6)


def test_runs_without_a_budget_track_nothing(ledger: agentledger.Ledger) -> None:
    with ledger.run("triage", on_budget="raise") as run:
        with run.llm(model="m-test") as call:
            call.record_usage(input_tokens=10**9, output_tokens=10**9)
        assert run.budget is None


def test_an_invalid_policy_falls_back_to_warn(
    ledger: agentledger.Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="agentledger.budget")
    policy: object = "explode"
    with (
        ledger.run("triage", budget_tokens=10, on_budget=policy) as run,
        run.llm(model="m-test") as call,
    ):
        call.record_usage(input_tokens=100, output_tokens=0)
    messages = " | ".join(r.getMessage() for r in caplog.records)
    assert "on_budget='explode'" in messages
    assert "over its budget" in messages
