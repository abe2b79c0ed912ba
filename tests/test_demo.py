"""The demo: the span kinds and agent behaviours it promises, and that it is deterministic."""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentledger.demo import run_demo
from agentledger.schemas import attributes as attr

ENDPOINT = "http://127.0.0.1:9"  # never used: every test injects an exporter
ANCHOR_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
DAY_NS = 86_400 * 10**9
SELF_HOSTED = "acme-extractor-7b"


@dataclass
class Demo:
    code: int
    spans: list[ReadableSpan]
    out: str

    def of_kind(self, kind: str) -> list[ReadableSpan]:
        return [s for s in self.spans if a(s).get(attr.SPAN_KIND) == kind]


def a(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def play(runs: int = 400, seed: int = 7) -> Demo:
    exporter = InMemorySpanExporter()
    out = io.StringIO()
    code = run_demo(
        endpoint=ENDPOINT, seed=seed, runs=runs, exporter=exporter, anchor_ns=ANCHOR_NS, out=out
    )
    return Demo(code, list(exporter.get_finished_spans()), out.getvalue())


def fingerprint(spans: list[ReadableSpan]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            s.context.trace_id,
            s.context.span_id,
            s.parent.span_id if s.parent else None,
            s.name,
            s.start_time,
            s.end_time,
            tuple(sorted(a(s).items())),
        )
        for s in spans
    )


@pytest.fixture(scope="module")
def demo() -> Demo:
    return play()


def test_the_demo_sends_every_span_kind(demo: Demo) -> None:
    assert demo.code == 0
    kinds = Counter(a(s).get(attr.SPAN_KIND) for s in demo.spans)
    assert set(kinds) == {"run", "step", "llm", "tool", "outcome"}
    assert {a(s)[attr.WORKFLOW] for s in demo.of_kind("run")} == {
        "support-ticket",
        "procurement",
        "contract-digest",
    }
    assert f"{len(demo.spans)} spans delivered" in demo.out


def test_the_demo_is_deterministic_and_the_seed_matters() -> None:
    first, second, other = play(runs=60), play(runs=60), play(runs=60, seed=8)

    assert fingerprint(first.spans) == fingerprint(second.spans)
    assert first.out.splitlines()[1:] == second.out.splitlines()[1:]  # line 0 has a duration
    first_ids = {(s.context.trace_id, s.context.span_id) for s in first.spans}
    assert len(first_ids) == len(first.spans)
    assert first_ids.isdisjoint({(s.context.trace_id, s.context.span_id) for s in other.spans})


def test_runs_spread_over_the_fourteen_days_before_the_anchor(demo: Demo) -> None:
    starts = [s.start_time or 0 for s in demo.spans]
    ends = [s.end_time or 0 for s in demo.spans]
    assert min(starts) >= ANCHOR_NS - 14 * DAY_NS
    assert max(ends) <= ANCHOR_NS
    run_days = {(s.start_time or 0) // DAY_NS for s in demo.of_kind("run")}
    assert len(run_days) == 14
    assert all((s.start_time or 0) <= (s.end_time or 0) for s in demo.spans)


def test_every_model_is_priced_except_the_self_hosted_one(demo: Demo) -> None:
    models = Counter(a(s)[attr.REQUEST_MODEL] for s in demo.of_kind("llm"))
    assert len(models) >= 5
    for model in models:
        if model == SELF_HOSTED:
            with pytest.raises(LookupError):
                calc_price(Usage(input_tokens=1, output_tokens=1), model_ref=model)
        else:
            calc_price(Usage(input_tokens=1, output_tokens=1), model_ref=model)
    tiers = {a(s).get(attr.TIER) for s in demo.of_kind("llm")}
    assert tiers == {"small", "mid", "frontier"}


def test_steps_carry_routing_axes(demo: Demo) -> None:
    for step in demo.of_kind("step"):
        assert a(step)[attr.TASK_COMPLEXITY] in attr.TASK_COMPLEXITIES
        assert a(step)[attr.TASK_SENSITIVITY] in attr.TASK_SENSITIVITIES
        assert a(step)[attr.TASK_CONTEXT] in attr.TASK_CONTEXTS
    cells = {
        (a(s)[attr.TASK_COMPLEXITY], a(s)[attr.TASK_SENSITIVITY], a(s)[attr.TASK_CONTEXT])
        for s in demo.of_kind("step")
    }
    assert len(cells) >= 6


def test_there_are_retries_on_one_tier_and_cascades_to_a_higher_one(demo: Demo) -> None:
    attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for step in demo.of_kind("step"):
        attempts[str(a(step)[attr.STEP_ID])].append(a(step))
    retried = [sorted(v, key=lambda x: x[attr.ATTEMPT]) for v in attempts.values() if len(v) > 1]

    cascades = [
        v for v in retried if v[0].get(attr.TIER) == "small" and v[-1].get(attr.TIER) == "frontier"
    ]
    same_tier = [v for v in retried if v[0].get(attr.TIER) == v[-1].get(attr.TIER)]
    assert cascades and same_tier
    for chain in retried:
        assert [x[attr.ATTEMPT] for x in chain] == list(range(1, len(chain) + 1))
        assert len({x[attr.STEP_NAME] for x in chain}) == 1
        # Only the last attempt may say it was accepted.
        assert all(x.get(attr.ATTEMPT_ACCEPTED) is not True for x in chain[:-1])
    assert any(x[0].get(attr.ATTEMPT_ACCEPTED) is False for x in cascades)
    # Some retries follow a failed call.
    assert any(a(s).get(attr.ERROR_TYPE) == "timeout" for s in demo.of_kind("llm"))


def test_context_grows_and_is_counted_as_reingested(demo: Demo) -> None:
    by_run: dict[str, list[ReadableSpan]] = defaultdict(list)
    for call in demo.of_kind("llm"):
        by_run[str(a(call)[attr.RUN_ID])].append(call)
    checked = 0
    for calls in by_run.values():
        calls.sort(key=lambda s: s.start_time or 0)
        for call in calls:
            assert 0 <= a(call)[attr.REINGESTED_TOKENS] <= a(call)[attr.INPUT_TOKENS]
            assert a(call).get(attr.CACHE_READ_TOKENS, 0) <= a(call)[attr.INPUT_TOKENS]
        if a(calls[0])[attr.WORKFLOW] != "procurement":
            continue
        # The chat loop: carry-forward, worked out here from the recorded usage.
        inputs = [a(c)[attr.INPUT_TOKENS] for c in calls]
        assert inputs == sorted(inputs)  # the context only grows
        expected = [0] + [
            min(inputs[k], inputs[k - 1] + a(calls[k - 1])[attr.OUTPUT_TOKENS])
            for k in range(1, len(calls))
        ]
        assert [a(c)[attr.REINGESTED_TOKENS] for c in calls] == expected
        checked += 1
    assert checked > 10
    assert sum(attr.CACHE_READ_TOKENS in a(c) for c in demo.of_kind("llm")) > 100
    assert any(attr.PREDICTED_TOKENS in a(c) for c in demo.of_kind("llm"))


def _price(span: ReadableSpan) -> float:
    attributes = a(span)
    if attributes.get(attr.SPAN_KIND) == "tool":
        return float(attributes.get(attr.COST_USD, 0.0))
    if attributes[attr.REQUEST_MODEL] == SELF_HOSTED:
        return 0.0
    usage = Usage(
        input_tokens=attributes[attr.INPUT_TOKENS],
        output_tokens=attributes[attr.OUTPUT_TOKENS],
        cache_read_tokens=attributes.get(attr.CACHE_READ_TOKENS),
    )
    return float(calc_price(usage, model_ref=attributes[attr.REQUEST_MODEL]).total_price)


def test_some_runs_break_their_token_or_cost_budget(demo: Demo) -> None:
    tokens: Counter[str] = Counter()
    cost: Counter[str] = Counter()
    for span in demo.of_kind("llm") + demo.of_kind("tool"):
        run_id = str(a(span)[attr.RUN_ID])
        cost[run_id] += _price(span)  # type: ignore[assignment]
        if a(span)[attr.SPAN_KIND] == "llm":
            tokens[run_id] += a(span)[attr.INPUT_TOKENS] + a(span)[attr.OUTPUT_TOKENS]
    over_tokens = under_tokens = over_usd = under_usd = 0
    for run in demo.of_kind("run"):
        run_id = str(a(run)[attr.RUN_ID])
        if attr.BUDGET_TOKENS in a(run):
            over = tokens[run_id] > a(run)[attr.BUDGET_TOKENS]
            over_tokens, under_tokens = over_tokens + over, under_tokens + (not over)
        if attr.BUDGET_USD in a(run):
            over = cost[run_id] > a(run)[attr.BUDGET_USD]
            over_usd, under_usd = over_usd + over, under_usd + (not over)
    assert 0 < over_tokens < under_tokens
    assert 0 < over_usd < under_usd
    assert f"{over_tokens + over_usd} runs over budget" in demo.out


def test_outcomes_are_mixed_some_late_some_pending(demo: Demo) -> None:
    on_runs = Counter(a(s).get(attr.OUTCOME) for s in demo.of_kind("run"))
    late = demo.of_kind("outcome")
    assert on_runs["correct"] > on_runs["incorrect"] > 0
    assert late and {a(s)[attr.OUTCOME_SOURCE] for s in late} == {"human-review"}
    assert {a(s)[attr.OUTCOME] for s in late} == {"correct", "incorrect"}
    # Each late verdict lies in its run's trace, after the run ended.
    runs = {s.context.trace_id: s for s in demo.of_kind("run")}
    for verdict in late:
        run = runs[verdict.context.trace_id]
        assert a(verdict)[attr.RUN_ID] == a(run)[attr.RUN_ID]
        assert (verdict.start_time or 0) > (run.end_time or 0)
    judged = {a(s)[attr.RUN_ID] for s in late} | {
        a(s)[attr.RUN_ID] for s in demo.of_kind("run") if attr.OUTCOME in a(s)
    }
    pending = [s for s in demo.of_kind("run") if a(s)[attr.RUN_ID] not in judged]
    assert pending  # recent support runs still wait for review
    assert f"{len(pending)} awaiting review" in demo.out


def test_crashed_runs_leave_calls_but_no_run_span(demo: Demo) -> None:
    with_runs = {a(s)[attr.RUN_ID] for s in demo.of_kind("run")}
    orphans = {a(s)[attr.RUN_ID] for s in demo.of_kind("llm")} - with_runs
    assert orphans
    assert f"{len(orphans)} crashed runs" in demo.out
    assert len(with_runs) + len(orphans) == 400


def test_paid_tools_carry_their_cost(demo: Demo) -> None:
    paid = [s for s in demo.of_kind("tool") if attr.COST_USD in a(s)]
    assert paid
    assert {a(s)[attr.TOOL_NAME] for s in paid} == {"supplier_api"}


@pytest.mark.parametrize("runs", [-1, "10", True])
def test_a_bad_run_count_is_refused(runs: Any) -> None:
    err = io.StringIO()
    assert run_demo(endpoint=ENDPOINT, runs=runs, exporter=InMemorySpanExporter(), err=err) == 2
    assert f"runs must be an integer >= 0, got {runs!r}" in err.getvalue()


def test_a_bad_endpoint_is_refused() -> None:
    err = io.StringIO()
    assert run_demo(endpoint="localhost:4318", runs=1, err=err) == 2
    assert "endpoint must be an http:// or https:// URL, got 'localhost:4318'" in err.getvalue()
