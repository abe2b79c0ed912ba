"""The attributes of run, step, llm, tool and outcome spans, and the resource."""

from __future__ import annotations

import logging
import re

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import agentledger
from agentledger.schemas import attributes as attr
from tests.sdk.conftest import attrs, of_kind, only

# 2025-01-02T03:04:05Z and later instants, in ns since the epoch.
T0 = 1_735_787_045_000_000_000
SECOND = 1_000_000_000


def test_run_span_carries_the_run_attributes(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run(
        "support-ticket",
        run_id="run-42",
        parent_run_id="run-41",
        budget_tokens=50_000,
        budget_usd=0.25,
        conversation_id="conv-7",
        agent_name="triage-bot",
    ) as run:
        run.set_outcome("correct", score=0.75)

    span = only(exporter.get_finished_spans(), attr.KIND_RUN)
    assert attrs(span) == {
        "agentledger.span.kind": "run",
        "agentledger.run.id": "run-42",
        "agentledger.run.parent_id": "run-41",
        "agentledger.workflow": "support-ticket",
        "agentledger.outcome": "correct",
        "agentledger.outcome.score": 0.75,
        "agentledger.budget.tokens": 50_000,
        "agentledger.budget.usd": 0.25,
        "gen_ai.conversation.id": "conv-7",
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "triage-bot",
    }
    assert span.name == "invoke_agent triage-bot"
    assert run.run_id == "run-42"


def test_run_id_defaults_to_the_trace_id_and_agent_name_to_the_workflow(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("support-ticket") as run:
        pass

    span = only(exporter.get_finished_spans(), attr.KIND_RUN)
    trace_hex = format(span.context.trace_id, "032x")
    assert run.run_id == trace_hex
    assert attrs(span)["agentledger.run.id"] == trace_hex
    assert attrs(span)["gen_ai.agent.name"] == "support-ticket"
    assert "agentledger.outcome" not in attrs(span)
    assert span.parent is None


def test_resource_names_service_version_environment_and_project(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("support-ticket"):
        pass

    resource = dict(only(exporter.get_finished_spans(), attr.KIND_RUN).resource.attributes)
    assert resource["service.name"] == "support-agent"
    assert resource["service.version"] == "1.4.0"
    assert resource["deployment.environment.name"] == "test"
    assert resource["agentledger.project"] == "acme"


def test_step_span_carries_step_attributes_and_the_run(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("support-ticket", run_id="run-1") as run:
        with run.step(
            "classify",
            tier="small",
            step_id="classify-1",
            accepted=True,
            complexity="low",
            sensitivity="internal",
            context="short",
        ):
            pass

    step = only(exporter.get_finished_spans(), attr.KIND_STEP)
    assert attrs(step) == {
        "agentledger.span.kind": "step",
        "agentledger.run.id": "run-1",
        "agentledger.workflow": "support-ticket",
        "agentledger.step.name": "classify",
        "agentledger.step.id": "classify-1",
        "agentledger.tier": "small",
        "agentledger.attempt": 1,
        "agentledger.attempt.accepted": True,
        "agentledger.task.complexity": "low",
        "agentledger.task.sensitivity": "internal",
        "agentledger.task.context": "short",
    }
    run_span = only(exporter.get_finished_spans(), attr.KIND_RUN)
    assert step.parent is not None and step.parent.span_id == run_span.context.span_id


def test_acceptance_is_absent_unless_set(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf") as run:
        with run.step("plain", tier="mid"):
            pass
        with run.step("kept", tier="mid") as kept:
            kept.accept()
        with run.step("thrown", tier="mid") as thrown:
            thrown.reject()

    accepted = {
        attrs(s)["agentledger.step.name"]: attrs(s).get("agentledger.attempt.accepted", "absent")
        for s in of_kind(exporter.get_finished_spans(), attr.KIND_STEP)
    }
    assert accepted == {"plain": "absent", "kept": True, "thrown": False}


def test_llm_span_carries_gen_ai_usage_and_cost(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("support-ticket", run_id="run-1") as run:
        with run.step("answer", tier="frontier", step_id="answer-1") as step:
            with step.llm(
                model="gpt-4o", provider="openai", response_model="gpt-4o-2024-08-06"
            ) as call:
                call.record_usage(
                    input_tokens=20_000,
                    output_tokens=2_000,
                    cache_read_tokens=5_000,
                    cache_write_tokens=1_000,
                    reasoning_tokens=1_000,
                    reingested_tokens=12_000,
                    predicted_tokens=1_500,
                    cost_usd=0.09,
                )

    span = only(exporter.get_finished_spans(), attr.KIND_LLM)
    assert attrs(span) == {
        "agentledger.span.kind": "llm",
        "agentledger.run.id": "run-1",
        "agentledger.workflow": "support-ticket",
        "agentledger.step.name": "answer",
        "agentledger.step.id": "answer-1",
        "agentledger.tier": "frontier",
        "agentledger.attempt": 1,
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 20_000,
        "gen_ai.usage.output_tokens": 2_000,
        "gen_ai.usage.cache_read.input_tokens": 5_000,
        "gen_ai.usage.cache_creation.input_tokens": 1_000,
        "gen_ai.usage.reasoning.output_tokens": 1_000,
        "agentledger.context.reingested_tokens": 12_000,
        "agentledger.tokens.predicted": 1_500,
        "agentledger.cost.usd": 0.09,
    }
    assert span.kind is SpanKind.CLIENT
    assert span.name == "chat gpt-4o-2024-08-06"
    step_span = only(exporter.get_finished_spans(), attr.KIND_STEP)
    assert span.parent is not None and span.parent.span_id == step_span.context.span_id


def test_request_model_overrides_model_and_response_model_can_come_later(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with (
        ledger.run("wf") as run,
        run.llm(model="alias", request_model="gpt-4o-mini", operation="text_completion") as call,
    ):
        call.set_response_model("gpt-4o-mini-2024-07-18")

    span = attrs(only(exporter.get_finished_spans(), attr.KIND_LLM))
    assert span["gen_ai.request.model"] == "gpt-4o-mini"
    assert span["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert span["gen_ai.operation.name"] == "text_completion"


def test_failed_call_records_error_type_and_keeps_its_usage(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf") as run, run.step("s", tier="small") as step:
        with step.llm(model="gpt-4o-mini") as call:
            call.record_usage(input_tokens=300, output_tokens=0)
            call.record_error("timeout")

    span = only(exporter.get_finished_spans(), attr.KIND_LLM)
    assert attrs(span)["error.type"] == "timeout"
    assert attrs(span)["gen_ai.usage.input_tokens"] == 300
    assert span.status.status_code is StatusCode.ERROR


def test_exception_leaving_a_call_is_recorded_and_reraised_unchanged(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with pytest.raises(TimeoutError, match="model too slow"):
        with ledger.run("wf") as run, run.step("s") as step, step.llm(model="gpt-4o"):
            raise TimeoutError("model too slow")

    spans = exporter.get_finished_spans()
    assert attrs(only(spans, attr.KIND_LLM))["error.type"] == "TimeoutError"
    for kind in (attr.KIND_LLM, attr.KIND_STEP, attr.KIND_RUN):
        assert only(spans, kind).status.status_code is StatusCode.ERROR, kind


def test_tool_span_carries_tool_name_cost_and_the_step(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf", run_id="run-1") as run:
        with run.step("lookup", tier="small", step_id="lookup-1") as step:
            with step.tool("web_search", cost_usd=0.005):
                pass
        with run.tool("calculator") as free_tool:
            free_tool.record_cost(0.0)

    tools = of_kind(exporter.get_finished_spans(), attr.KIND_TOOL)
    assert attrs(tools[0]) == {
        "agentledger.span.kind": "tool",
        "agentledger.run.id": "run-1",
        "agentledger.workflow": "wf",
        "agentledger.step.name": "lookup",
        "agentledger.step.id": "lookup-1",
        "agentledger.tier": "small",
        "agentledger.attempt": 1,
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "web_search",
        "agentledger.cost.usd": 0.005,
    }
    assert tools[0].name == "execute_tool web_search"
    assert attrs(tools[1]) == {
        "agentledger.span.kind": "tool",
        "agentledger.run.id": "run-1",
        "agentledger.workflow": "wf",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "calculator",
        "agentledger.cost.usd": 0.0,
    }


def test_late_outcome_is_a_root_outcome_span(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf", run_id="run-9"):
        # Recorded inside another run on purpose: it must not nest there.
        ledger.record_outcome("run-7", "incorrect", score=0.0, source="eval-job", timestamp_ns=T0)

    span = only(exporter.get_finished_spans(), attr.KIND_OUTCOME)
    assert attrs(span) == {
        "agentledger.span.kind": "outcome",
        "agentledger.run.id": "run-7",
        "agentledger.outcome": "incorrect",
        "agentledger.outcome.score": 0.0,
        "agentledger.outcome.source": "eval-job",
    }
    assert span.parent is None
    assert span.start_time == span.end_time == T0


def test_outcome_set_after_the_run_ended_becomes_an_outcome_span(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("wf", run_id="run-3") as run:
        pass
    run.set_outcome("correct")

    outcome = only(exporter.get_finished_spans(), attr.KIND_OUTCOME)
    assert attrs(outcome)["agentledger.run.id"] == "run-3"
    assert attrs(outcome)["agentledger.outcome"] == "correct"
    assert attrs(outcome)["agentledger.outcome.source"] == "sdk"
    assert "agentledger.outcome" not in attrs(only(exporter.get_finished_spans(), attr.KIND_RUN))


def test_explicit_times_replay_history(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    run = ledger.run("wf", start_time_ns=T0)
    with run:
        with run.step("s", start_time_ns=T0 + SECOND) as step:
            with step.llm(model="gpt-4o", start_time_ns=T0 + 2 * SECOND) as call:
                call.end(end_time_ns=T0 + 3 * SECOND)
            with step.tool("t", start_time_ns=T0 + 3 * SECOND) as tool:
                tool.end(end_time_ns=T0 + 4 * SECOND)
            step.end(end_time_ns=T0 + 5 * SECOND)
        run.end(end_time_ns=T0 + 6 * SECOND)

    spans = exporter.get_finished_spans()
    times = {
        kind: (only(spans, kind).start_time, only(spans, kind).end_time)
        for kind in (attr.KIND_RUN, attr.KIND_STEP, attr.KIND_LLM, attr.KIND_TOOL)
    }
    assert times == {
        "run": (T0, T0 + 6 * SECOND),
        "step": (T0 + SECOND, T0 + 5 * SECOND),
        "llm": (T0 + 2 * SECOND, T0 + 3 * SECOND),
        "tool": (T0 + 3 * SECOND, T0 + 4 * SECOND),
    }


def test_spans_are_flushed_when_the_run_ends(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    # The batch processor would wait a second; ending the run must not.
    with ledger.run("wf") as run, run.step("s") as step, step.llm(model="gpt-4o"):
        pass
    assert {attrs(s)[attr.SPAN_KIND] for s in exporter.get_finished_spans()} == {
        "run",
        "step",
        "llm",
    }


def test_a_child_run_records_its_parent_and_not_the_parents_step(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("planner", run_id="parent") as run, run.step("delegate", tier="mid"):
        with ledger.run("researcher") as child:
            pass

    (child_span,) = [
        s
        for s in of_kind(exporter.get_finished_spans(), attr.KIND_RUN)
        if attrs(s)["agentledger.workflow"] == "researcher"
    ]
    child_attrs = attrs(child_span)
    assert child_attrs["agentledger.run.parent_id"] == "parent"
    # It shares the parent's trace, so its id cannot be the trace id.
    assert child.run_id != format(child_span.context.trace_id, "032x")
    assert child_attrs["agentledger.run.id"] == child.run_id
    assert len(child.run_id) == 32 and int(child.run_id, 16) >= 0
    assert "agentledger.step.name" not in child_attrs
    assert "agentledger.tier" not in child_attrs


# --- bad values at runtime: logged and dropped, never raised -------------------------------


@pytest.mark.parametrize(
    ("step_kwargs", "dropped"),
    [
        ({"complexity": "extreme"}, "agentledger.task.complexity"),
        ({"sensitivity": "public"}, "agentledger.task.sensitivity"),
        ({"context": 12_000}, "agentledger.task.context"),
        ({"tier": ""}, "agentledger.tier"),
        ({"accepted": "yes"}, "agentledger.attempt.accepted"),
    ],
)
def test_bad_step_values_are_dropped_with_a_warning(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    step_kwargs: dict[str, object],
    dropped: str,
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentledger"):
        with ledger.run("wf") as run, run.step("s", **step_kwargs):  # type: ignore[arg-type]
            pass

    assert dropped not in attrs(only(exporter.get_finished_spans(), attr.KIND_STEP))
    assert dropped in caplog.text
    assert repr(next(iter(step_kwargs.values()))) in caplog.text


@pytest.mark.parametrize(
    ("usage", "dropped"),
    [
        ({"input_tokens": -1}, "gen_ai.usage.input_tokens"),
        ({"output_tokens": 2.5}, "gen_ai.usage.output_tokens"),
        ({"cache_read_tokens": True}, "gen_ai.usage.cache_read.input_tokens"),
        ({"cost_usd": float("nan")}, "agentledger.cost.usd"),
        ({"cost_usd": -0.01}, "agentledger.cost.usd"),
        ({"input_tokens": 100, "reingested_tokens": 101}, "agentledger.context.reingested_tokens"),
    ],
)
def test_bad_usage_values_are_dropped_with_a_warning(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    usage: dict[str, object],
    dropped: str,
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentledger"):
        with ledger.run("wf") as run, run.llm(model="gpt-4o") as call:
            call.record_usage(**usage)  # type: ignore[arg-type]

    assert dropped not in attrs(only(exporter.get_finished_spans(), attr.KIND_LLM))
    assert dropped in caplog.text


def test_bad_outcomes_are_dropped_with_a_warning(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentledger"):
        with ledger.run("wf", budget_tokens=-5) as run:
            run.set_outcome("maybe")
            run.set_outcome("correct", score=1.5)
        ledger.record_outcome("", "correct")

    spans = exporter.get_finished_spans()
    run_attrs = attrs(only(spans, attr.KIND_RUN))
    assert run_attrs["agentledger.outcome"] == "correct"
    assert "agentledger.outcome.score" not in run_attrs
    assert "agentledger.budget.tokens" not in run_attrs
    assert of_kind(spans, attr.KIND_OUTCOME) == []
    for text in ("'maybe'", "1.5", "-5", "outcome dropped"):
        assert text in caplog.text


def test_attribute_set_after_the_span_ended_is_dropped_with_a_warning(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    with ledger.run("wf") as run, run.step("s") as step:
        pass
    with caplog.at_level(logging.WARNING, logger="agentledger"):
        step.reject()

    assert "agentledger.attempt.accepted" not in attrs(
        only(exporter.get_finished_spans(), attr.KIND_STEP)
    )
    assert "has ended" in caplog.text


# --- misconfiguration at construction: ValueError ------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"service_name": ""}, "service_name must be a non-empty string, got ''"),
        ({"service_name": None}, "service_name must be a non-empty string, got None"),
        ({"project": "  "}, "project must be a non-empty string, got '  '"),
        ({"service_version": 3}, "service_version must be a non-empty string, got 3"),
        ({"endpoint": "localhost:4318"}, "endpoint must be an http:// or https:// URL"),
        ({"flush_timeout_seconds": 0}, "flush_timeout_seconds must be a finite number"),
        ({"flush_timeout_seconds": "5"}, "got '5'"),
        ({"export_timeout_seconds": float("inf")}, "export_timeout_seconds must be"),
        ({"tier_map": ["gpt-4o"]}, "tier_map must map model names to tier names"),
        ({"tier_map": {"gpt-4o": ""}}, "got 'gpt-4o': ''"),
        ({"exporter": object()}, "exporter must be an OpenTelemetry SpanExporter"),
        ({"id_generator": 42}, "id_generator must be an OpenTelemetry IdGenerator, got 42"),
        ({"flush_on_run_end": 1}, "flush_on_run_end must be True or False, got 1"),
    ],
)
def test_misconfiguration_raises_value_error_naming_field_and_value(
    kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"service_name": "agent", "exporter": InMemorySpanExporter()}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        agentledger.Ledger(**arguments)  # type: ignore[arg-type]


def test_endpoint_comes_from_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.internal:4318/")
    from_env = agentledger.Ledger("agent")
    explicit = agentledger.Ledger("agent", endpoint="https://ledger.example.com")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    default = agentledger.Ledger("agent")
    try:
        assert from_env.endpoint == "http://collector.internal:4318"
        assert explicit.endpoint == "https://ledger.example.com"
        assert default.endpoint == "http://127.0.0.1:4318"
    finally:
        for made in (from_env, explicit, default):
            made.shutdown()


def test_a_run_in_a_new_trace_ignores_the_current_span_and_run(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("live", run_id="live-1") as live, live.step("s"):
        with ledger.run("replay", new_trace=True) as replay, replay.step("r"):
            pass

    (replay_span,) = [
        s
        for s in of_kind(exporter.get_finished_spans(), attr.KIND_RUN)
        if attrs(s)["agentledger.workflow"] == "replay"
    ]
    assert replay_span.parent is None
    assert replay.run_id == format(replay_span.context.trace_id, "032x")
    assert "agentledger.run.parent_id" not in attrs(replay_span)
    (replay_step,) = [
        s
        for s in of_kind(exporter.get_finished_spans(), attr.KIND_STEP)
        if attrs(s)["agentledger.step.name"] == "r"
    ]
    assert replay_step.context.trace_id == replay_span.context.trace_id
