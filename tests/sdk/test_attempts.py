"""Steps as attempts: retries, cascades, and tiers from the tier map."""

from __future__ import annotations

import threading

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentledger
from agentledger.schemas import attributes as attr
from tests.sdk.conftest import attrs, of_kind, only


def _steps(exporter: InMemorySpanExporter) -> list[dict[str, object]]:
    steps = sorted(
        of_kind(exporter.get_finished_spans(), attr.KIND_STEP),
        key=lambda span: span.start_time or 0,
    )
    return [attrs(span) for span in steps]


def test_retry_keeps_the_step_id_and_counts_the_attempt(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf") as run:
        with run.step("extract", tier="mid", complexity="medium") as first:
            first.reject()
        with run.retry(first) as second:
            second.reject()
        with run.retry(second) as third:
            third.accept()

    steps = _steps(exporter)
    assert [s["agentledger.attempt"] for s in steps] == [1, 2, 3]
    assert len({s["agentledger.step.id"] for s in steps}) == 1
    assert steps[0]["agentledger.step.id"] == first.step_id
    assert [s["agentledger.attempt.accepted"] for s in steps] == [False, False, True]
    # Tier and routing axes carry over to the retries when not given again.
    assert {s["agentledger.tier"] for s in steps} == {"mid"}
    assert {s["agentledger.task.complexity"] for s in steps} == {"medium"}
    assert {s["agentledger.step.name"] for s in steps} == {"extract"}


def test_distinct_step_instances_get_distinct_ids(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf") as run:
        for _ in range(3):
            with run.step("reply"):
                pass

    assert len({s["agentledger.step.id"] for s in _steps(exporter)}) == 3


def test_cascade_records_each_attempt_on_its_own_tier(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf") as run:
        with run.step("extract", tier="small") as first:
            with first.llm(model="gpt-4o-mini") as call:
                call.record_usage(input_tokens=1_000, output_tokens=200)
            first.reject()
        with run.retry(first, tier="frontier") as second:
            with second.llm(model="gpt-4o") as call:
                call.record_usage(input_tokens=1_000, output_tokens=300)

    assert [(s["agentledger.attempt"], s["agentledger.tier"]) for s in _steps(exporter)] == [
        (1, "small"),
        (2, "frontier"),
    ]
    calls = sorted(
        of_kind(exporter.get_finished_spans(), attr.KIND_LLM), key=lambda span: span.start_time or 0
    )
    assert [(attrs(c)["agentledger.attempt"], attrs(c)["agentledger.tier"]) for c in calls] == [
        (1, "small"),
        (2, "frontier"),
    ]
    assert attrs(calls[0])["agentledger.step.id"] == attrs(calls[1])["agentledger.step.id"]


def test_tier_comes_from_the_first_calls_model_when_not_given(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    # Tier map of the fixture: gpt-4o-mini -> small, gpt-4o -> frontier.
    with ledger.run("wf") as run:
        with run.step("mapped") as step:
            with step.llm(model="gpt-4o-mini"):
                pass
            with step.llm(model="gpt-4o"):  # a later call does not change the attempt's tier
                pass
        with run.step("explicit", tier="mid") as step, step.llm(model="gpt-4o-mini"):
            pass
        with run.step("unmapped") as step, step.llm(model="private-model"):
            pass
        with run.llm(model="gpt-4o"):  # outside any step: its own model's tier
            pass

    tiers = {
        s["agentledger.step.name"]: s.get("agentledger.tier", "absent") for s in _steps(exporter)
    }
    assert tiers == {"mapped": "small", "explicit": "mid", "unmapped": "absent"}
    call_tiers = [
        (
            attrs(c).get("agentledger.step.name", "-"),
            attrs(c)["gen_ai.request.model"],
            attrs(c).get("agentledger.tier", "absent"),
        )
        for c in sorted(
            of_kind(exporter.get_finished_spans(), attr.KIND_LLM),
            key=lambda span: span.start_time or 0,
        )
    ]
    assert call_tiers == [
        ("mapped", "gpt-4o-mini", "small"),
        ("mapped", "gpt-4o", "small"),
        ("explicit", "gpt-4o-mini", "mid"),
        ("unmapped", "private-model", "absent"),
        ("-", "gpt-4o", "frontier"),
    ]


def test_explicit_step_id_and_attempt_are_kept(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf") as run:
        with run.step("extract", step_id="ticket-77:extract", attempt=3) as third:
            pass
        with run.retry(third):
            pass

    assert [(s["agentledger.step.id"], s["agentledger.attempt"]) for s in _steps(exporter)] == [
        ("ticket-77:extract", 3),
        ("ticket-77:extract", 4),
    ]


def test_steps_started_from_another_thread_still_belong_to_the_run(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    def work(run: agentledger.Run, name: str) -> None:
        # No context is carried into the thread: the step must find its run by itself.
        with run.step(name, tier="small") as step, step.llm(model="gpt-4o-mini") as call:
            call.record_usage(input_tokens=10, output_tokens=1)

    with ledger.run("fan-out", run_id="run-1") as run:
        workers = [threading.Thread(target=work, args=(run, f"part-{i}")) for i in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    spans = exporter.get_finished_spans()
    run_span = only(spans, attr.KIND_RUN)
    steps = of_kind(spans, attr.KIND_STEP)
    assert len(steps) == 4
    for step in steps:
        assert step.parent is not None and step.parent.span_id == run_span.context.span_id
    for call in of_kind(spans, attr.KIND_LLM):
        assert attrs(call)["agentledger.run.id"] == "run-1"
        assert str(attrs(call)["agentledger.step.name"]).startswith("part-")
