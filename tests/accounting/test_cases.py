"""The cases of "Numbers you can trust", through a real ``agentledger serve``.

Each case writes into a project of its own, so a project's total is that case alone. Prices
come from the issue's test price file (tests/accounting/conftest.py), in USD per million
tokens: m-large $3.00 input, $0.30 cache read, $3.75 cache write, $15.00 output; m-small
$0.50 input, $0.05 cache read, $2.00 output; m-unknown has no price. Every expected value
below is worked out by hand in the comment beside it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

import agentledger
from agentledger.dashboard import formatting
from agentledger.schemas.api import MetricsRow
from tests.accounting.conftest import metrics, post_spans, strict_json
from tests.collector.otlp_payloads import ResourceSpec, SpanSpec
from tests.conftest import Collector

JAN_1_2025_NS = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z
SECOND = 1_000_000_000
WINDOW = {"since": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z"}


def _ledger(collector: Collector, project: str) -> agentledger.Ledger:
    return agentledger.Ledger(
        "accounting-tests", endpoint=collector.url, project=project, flush_timeout_seconds=10
    )


def _send(ledger: agentledger.Ledger) -> None:
    assert ledger.flush(timeout_seconds=10)
    ledger.shutdown()


def _resource(project: str, spans: list[SpanSpec]) -> ResourceSpec:
    return ResourceSpec(spans, {"service.name": "agent", "agentledger.project": project})


def _run_detail(collector: Collector, run_id: str, project: str) -> dict[str, Any]:
    detail = strict_json(collector.get(f"/api/v1/runs/{run_id}", project=project))
    assert isinstance(detail, dict)
    return detail


def _all_calls(detail: dict[str, Any]) -> list[dict[str, Any]]:
    calls = list(detail["calls_outside_steps"])
    for attempt in detail["attempts"]:
        calls.extend(attempt["calls"])
    return calls


# --- reasoning stays inside output; the Gemini shape gives the same ---------------------------


def test_reasoning_is_part_of_output_in_our_shape_and_in_geminis(
    priced_collector: Collector,
) -> None:
    project = "case-reasoning"
    ledger = _ledger(priced_collector, project)
    with (
        ledger.run("reasoning", run_id="otel-shape") as run,
        run.llm(model="m-large", provider="test") as call,
    ):
        call.record_usage(input_tokens=20_000, output_tokens=2_000, reasoning_tokens=1_000)
    with (
        ledger.run("reasoning", run_id="gemini-shape") as run,
        run.llm(model="m-large", provider="gcp.gemini") as call,
    ):
        # Gemini reports the 1,000 reasoning tokens beside the 1,000 candidates.
        call.record_response(
            {
                "modelVersion": "m-large",
                "usageMetadata": {
                    "promptTokenCount": 20_000,
                    "candidatesTokenCount": 1_000,
                    "thoughtsTokenCount": 1_000,
                    "totalTokenCount": 22_000,
                },
            }
        )
    _send(ledger)

    for run_id in ("otel-shape", "gemini-shape"):
        (call,) = _all_calls(_run_detail(priced_collector, run_id, project))
        assert call["model"] == "m-large"
        assert call["input_tokens"] == 20_000
        assert call["output_tokens"] == 2_000  # reasoning is inside, never added on top
        assert call["reasoning_tokens"] == 1_000
        # 20,000 * $3.00 / 1M + 2,000 * $15.00 / 1M = 0.06 + 0.03
        assert call["cost_usd"] == Decimal("0.090000")
        assert call["cost_source"] == "price-file"

    (total,) = metrics(priced_collector, project=project)
    assert total["output_tokens"] == 4_000
    assert total["cost_usd"] == Decimal("0.18")


# --- an unpriced call: null cost, counted, incomplete, logged once -----------------------------


def test_an_unpriced_call_is_null_counted_and_leaves_the_cost_incomplete(
    priced_collector: Collector,
) -> None:
    project = "case-unpriced"
    ledger = _ledger(priced_collector, project)
    with (
        ledger.run("unpriced", run_id="mixed") as run,
        run.llm(model="m-small", provider="test") as call,
    ):
        call.record_usage(input_tokens=1_000, output_tokens=100)
        with run.llm(model="m-unknown", provider="test") as call:
            call.record_usage(input_tokens=1_000, output_tokens=100)
        with run.llm(model="m-unknown", provider="test") as call:
            call.record_usage(input_tokens=1_000, output_tokens=100)
    _send(ledger)

    detail = _run_detail(priced_collector, "mixed", project)
    costs = {(c["model"], c["cost_usd"], c["cost_source"]) for c in _all_calls(detail)}
    # m-small: 1,000 * 0.50 / 1M + 100 * 2.00 / 1M = 0.0005 + 0.0002 = 0.0007
    assert costs == {("m-small", Decimal("0.0007"), "price-file"), ("m-unknown", None, "")}
    assert detail["cost_usd"] == Decimal("0.0007")
    assert detail["cost_complete"] is False

    (total,) = metrics(priced_collector, project=project)
    assert total["cost_usd"] == Decimal("0.0007")
    assert total["unpriced_calls"] == 2
    assert total["cost_complete"] is False
    by_model = {r["model"]: r for r in metrics(priced_collector, project=project, group_by="model")}
    assert by_model["m-unknown"]["cost_usd"] is None  # nothing priced at all: unknown, not $0
    assert by_model["m-unknown"]["unpriced_calls"] == 2
    assert by_model["m-small"]["cost_complete"] is True

    log = priced_collector.log_path.read_text("utf-8")
    assert log.count("unpriced model: model='m-unknown'") == 1


# --- roll-ups repeat their children's usage and never count --------------------------------


_CHILD_USAGE = ((200, 114), (900, 283), (1_000, 455))
# Children: input 200 + 900 + 1,000 = 2,100; output 114 + 283 + 455 = 852.
# Cost: 2,100 * 0.50 / 1M + 852 * 2.00 / 1M = 0.00105 + 0.001704 = 0.002754.
_ROLLUP_COST = Decimal("0.002754")


def _rollup_spans(trace_id: str, run_id: str | None, child_kind: str | None) -> list[SpanSpec]:
    own = {"agentledger.run.id": run_id, "agentledger.workflow": "rollup"} if run_id else {}
    repeated = {
        "gen_ai.request.model": "m-small",
        "gen_ai.usage.input_tokens": 2_100,
        "gen_ai.usage.output_tokens": 852,
    }
    run_attrs = {**own, **repeated}
    if run_id:
        run_attrs["agentledger.span.kind"] = "run"
    spans = [
        SpanSpec("a000000000000001", trace_id, name="run", attributes=run_attrs),
        SpanSpec(
            "a000000000000002",
            trace_id,
            parent="a000000000000001",
            name="invoke_agent planner",
            attributes={**own, **repeated, "gen_ai.operation.name": "invoke_agent"},
        ),
    ]
    for index, (inputs, outputs) in enumerate(_CHILD_USAGE):
        child = {
            **own,
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m-small",
            "gen_ai.usage.input_tokens": inputs,
            "gen_ai.usage.output_tokens": outputs,
        }
        if child_kind:
            child["agentledger.span.kind"] = child_kind
        spans.append(
            SpanSpec(
                f"b00000000000000{index}",
                trace_id,
                parent="a000000000000002",
                name="chat m-small",
                start_ns=JAN_1_2025_NS + index * SECOND,
                attributes=child,
            )
        )
    return spans


@pytest.mark.parametrize(
    ("project", "run_id", "child_kind", "split"),
    [
        # Our run span, a foreign agent span, our llm children, in one request.
        ("case-rollup", "rollup-run", "llm", ""),
        # Everything foreign; the children come in a later request than their parents.
        ("case-rollup-foreign", None, None, "parents-first"),
        # Everything foreign; the parents come last, as exporters send them (ended last).
        ("case-rollup-late-parents", None, None, "children-first"),
    ],
)
def test_roll_ups_never_add_to_their_childrens_usage(
    priced_collector: Collector,
    project: str,
    run_id: str | None,
    child_kind: str | None,
    split: str,
) -> None:
    trace_id = "c0ffee00000000000000000000000001"
    spans = _rollup_spans(trace_id, run_id, child_kind)
    if split == "parents-first":
        post_spans(priced_collector, [_resource(project, spans[:2])])
        post_spans(priced_collector, [_resource(project, spans[2:])])
    elif split == "children-first":
        post_spans(priced_collector, [_resource(project, spans[2:])])
        post_spans(priced_collector, [_resource(project, spans[1:2])])
        post_spans(priced_collector, [_resource(project, spans[:1])])
    else:
        post_spans(priced_collector, [_resource(project, spans)])

    detail = _run_detail(priced_collector, run_id or trace_id, project)
    assert (detail["calls"], detail["input_tokens"], detail["output_tokens"]) == (3, 2_100, 852)
    assert detail["cost_usd"] == _ROLLUP_COST
    (total,) = metrics(priced_collector, project=project)
    assert (total["input_tokens"], total["output_tokens"]) == (2_100, 852)
    assert total["cost_usd"] == _ROLLUP_COST


# --- the same span twice counts once; distinct attempts count each ------------------------------


def _step_with_call(
    trace_id: str, run_id: str, step_span: str, attempt: int, accepted: bool | None
) -> list[SpanSpec]:
    start = JAN_1_2025_NS + attempt * 10 * SECOND
    context = {
        "agentledger.run.id": run_id,
        "agentledger.workflow": "retries",
        "agentledger.step.name": "answer",
        "agentledger.step.id": "answer-1",
        "agentledger.attempt": attempt,
    }
    step = {**context, "agentledger.span.kind": "step", "agentledger.tier": "small"}
    if accepted is not None:
        step["agentledger.attempt.accepted"] = accepted
    call = {
        **context,
        "agentledger.span.kind": "llm",
        "gen_ai.request.model": "m-small",
        "gen_ai.usage.input_tokens": 1_000,
        "gen_ai.usage.output_tokens": 100,
    }
    return [
        SpanSpec(step_span, trace_id, name="answer", start_ns=start, attributes=step),
        SpanSpec(
            "d" + step_span[1:],
            trace_id,
            parent=step_span,
            name="chat m-small",
            start_ns=start + SECOND,
            end_ns=start + 2 * SECOND,
            attributes=call,
        ),
    ]


def test_a_request_posted_twice_counts_once(priced_collector: Collector) -> None:
    project = "case-duplicate"
    request = [_resource(project, _step_with_call("d" * 32, "dup", "e000000000000001", 1, None))]
    post_spans(priced_collector, request)
    post_spans(priced_collector, request)

    (total,) = metrics(priced_collector, project=project)
    assert total["cost_usd"] == Decimal("0.0007")  # 1,000 * 0.50 / 1M + 100 * 2.00 / 1M
    assert (total["calls"], total["attempts"], total["input_tokens"]) == (1, 1, 1_000)
    assert total["retry_amplification"] == 1.0


def test_two_attempts_of_one_step_count_twice(priced_collector: Collector) -> None:
    project = "case-retry"
    spans = _step_with_call("e" * 32, "retry", "e000000000000001", 1, None)
    spans += _step_with_call("e" * 32, "retry", "e000000000000002", 2, True)
    post_spans(priced_collector, [_resource(project, spans)])

    (total,) = metrics(priced_collector, project=project)
    assert total["cost_usd"] == Decimal("0.0014")  # two calls at 0.0007
    assert (total["calls"], total["attempts"]) == (2, 2)
    # All attempts 2 * 1,100 tokens over the accepted attempt's 1,100.
    assert total["retry_amplification"] == 2.0
    assert total["cost_retry_amplification"] == 2.0


# --- no correct run, an idle tier, and a verdict that arrives later -----------------------------


def _judged_run(trace_id: str, run_id: str, offset_s: int) -> list[SpanSpec]:
    start = JAN_1_2025_NS + offset_s * SECOND
    run_attrs = {
        "agentledger.span.kind": "run",
        "agentledger.run.id": run_id,
        "agentledger.workflow": "judged",
        "agentledger.outcome": "incorrect",
    }
    call = {
        "agentledger.span.kind": "llm",
        "agentledger.run.id": run_id,
        "agentledger.workflow": "judged",
        "gen_ai.request.model": "m-large",
        "gen_ai.usage.input_tokens": 20_000,
        "gen_ai.usage.output_tokens": 2_000,
    }
    return [
        SpanSpec(
            "f000000000000001",
            trace_id,
            name="run",
            start_ns=start,
            end_ns=start + 60 * SECOND,
            attributes=run_attrs,
        ),
        SpanSpec(
            "f000000000000002",
            trace_id,
            parent="f000000000000001",
            name="chat",
            start_ns=start + SECOND,
            end_ns=start + 30 * SECOND,
            attributes=call,
        ),
    ]


_EVERY_GROUPING = [
    "",
    "workflow",
    "step",
    "tier",
    "model",
    "day",
    "workflow,tier",
    "step,tier",
    "model,day",
    "workflow,step,tier,model,day",
]


def test_no_correct_run_gives_null_then_a_late_verdict_counts(
    priced_collector: Collector,
) -> None:
    project = "case-verdict"
    post_spans(
        priced_collector,
        [
            _resource(
                project,
                _judged_run("1" * 32, "judged-1", 0) + _judged_run("2" * 32, "judged-2", 600),
            )
        ],
    )

    (total,) = metrics(priced_collector, project=project, **WINDOW)
    assert total["cost_usd"] == Decimal("0.18")  # two calls at 0.06 + 0.03
    assert (total["runs"], total["known_runs"], total["correct_runs"]) == (2, 2, 0)
    assert total["cost_per_correct_outcome_usd"] is None
    assert (total["outcome_coverage"], total["success_rate"]) == (1.0, 0.0)
    shown = formatting.cost_per_correct_outcome(MetricsRow(**total))
    assert (shown.text, shown.note) == ("—", formatting.NO_CORRECT)

    by_tier = {
        r["tier"]: r for r in metrics(priced_collector, project=project, group_by="tier", **WINDOW)
    }
    assert set(by_tier) == {"frontier", "small"}  # small is in the tier map, with no data
    assert by_tier["frontier"]["cost_usd"] == Decimal("0.18")
    small = by_tier["small"]
    counts = (
        "runs",
        "known_runs",
        "correct_runs",
        "calls",
        "attempts",
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "reingested_tokens",
        "unpriced_calls",
    )
    assert all(small[name] == 0 for name in counts), small
    rates = (
        "cost_per_correct_outcome_usd",
        "outcome_coverage",
        "success_rate",
        "reingestion_overhead",
        "retry_amplification",
        "cost_retry_amplification",
    )
    assert all(small[name] is None for name in rates), small
    assert small["cost_usd"] == 0 and small["cost_complete"] is True
    only_small = metrics(priced_collector, project=project, group_by="tier", tier="small")
    assert [r["tier"] for r in only_small] == ["small"]

    # Valid JSON and HTTP 200 everywhere, whatever the grouping.
    for grouping in _EVERY_GROUPING:
        params = {"group_by": grouping} if grouping else {}
        metrics(priced_collector, project=project, **params, **WINDOW)
    strict_json(priced_collector.get("/api/v1/runs", project=project))
    for run_id in ("judged-1", "judged-2"):
        _run_detail(priced_collector, run_id, project)
    assert priced_collector.get("/dashboard/").status_code == 200

    # An evaluator marks judged-1 correct an hour later. An older verdict on judged-2,
    # arriving after it, loses to the run's own (later) verdict.
    verdicts = [
        {
            "run_id": "judged-1",
            "outcome": "correct",
            "source": "human",
            "timestamp": "2025-01-01T01:00:00Z",
            "project": project,
        },
        {
            "run_id": "judged-2",
            "outcome": "correct",
            "source": "human",
            "timestamp": "2024-12-31T00:00:00Z",
            "project": project,
        },
    ]
    answer = httpx.post(priced_collector.url + "/api/v1/outcomes", json=verdicts, timeout=30)
    assert strict_json(answer) == {"accepted": 2}

    (total,) = metrics(priced_collector, project=project, **WINDOW)
    assert total["correct_runs"] == 1
    # Both judged runs' spend (0.18) over one correct outcome.
    assert total["cost_per_correct_outcome_usd"] == Decimal("0.18")
    assert total["success_rate"] == 0.5
    page = strict_json(priced_collector.get("/api/v1/runs", project=project))
    assert {r["run_id"]: r["outcome"] for r in page["runs"]} == {
        "judged-1": "correct",
        "judged-2": "incorrect",
    }


def test_a_late_outcome_span_wins_by_its_own_time_and_creates_no_run(
    priced_collector: Collector,
) -> None:
    project = "case-outcome-span"
    post_spans(priced_collector, [_resource(project, _judged_run("3" * 32, "late", 0))])
    # The run ended at 00:01:00 with "incorrect"; an evaluator says "correct" at 02:00, in a
    # trace of its own, and an older "incorrect" from 00:00:30 arrives after that.
    verdicts = []
    for span_id, outcome, at_s in (
        ("9000000000000001", "correct", 7_200),
        ("9000000000000002", "incorrect", 30),
    ):
        verdicts.append(
            SpanSpec(
                span_id,
                "4" * 32,
                name="evaluate",
                start_ns=JAN_1_2025_NS + at_s * SECOND,
                end_ns=JAN_1_2025_NS + at_s * SECOND,
                attributes={
                    "agentledger.span.kind": "outcome",
                    "agentledger.run.id": "late",
                    "agentledger.outcome": outcome,
                    "agentledger.outcome.source": "evaluator",
                },
            )
        )
    post_spans(priced_collector, [_resource(project, verdicts[:1])])
    post_spans(priced_collector, [_resource(project, verdicts[1:])])
    post_spans(priced_collector, [_resource(project, verdicts[:1])])  # re-delivered

    (total,) = metrics(priced_collector, project=project, **WINDOW)
    assert (total["runs"], total["known_runs"], total["correct_runs"]) == (1, 1, 1)
    assert total["cost_per_correct_outcome_usd"] == Decimal("0.09")  # 0.06 + 0.03, one correct
    (run,) = strict_json(priced_collector.get("/api/v1/runs", project=project))["runs"]
    assert run["run_id"] == "late"
    assert run["start_time"] == "2025-01-01T00:00:00+00:00"  # the verdict does not move it
    assert run["end_time"] == "2025-01-01T00:01:00+00:00"


def test_an_empty_project_answers_zeros_and_nulls(priced_collector: Collector) -> None:
    (total,) = metrics(priced_collector, project="case-empty")
    assert (total["runs"], total["calls"], total["cost_usd"]) == (0, 0, 0)
    assert total["cost_per_correct_outcome_usd"] is None
    assert total["outcome_coverage"] is None and total["retry_amplification"] is None
    by_tier = metrics(priced_collector, project="case-empty", group_by="tier")
    assert [(r["tier"], r["runs"], r["success_rate"]) for r in by_tier] == [
        ("frontier", 0, None),
        ("small", 0, None),
    ]
    for grouping in _EVERY_GROUPING:
        params = {"group_by": grouping} if grouping else {}
        metrics(priced_collector, project="case-empty", **params)
    assert strict_json(priced_collector.get("/api/v1/runs", project="case-empty"))["total"] == 0
