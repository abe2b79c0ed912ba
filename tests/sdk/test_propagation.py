"""Run and step attributes on foreign spans, and life beside the application's own tracing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentledger
from agentledger.schemas import attributes as attr
from tests.sdk.conftest import attrs, only


@pytest.fixture
def app_exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def app_provider(app_exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """An application's own tracer provider, never made global."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(app_exporter))
    yield provider
    provider.shutdown()


def _one_named(exporter: InMemorySpanExporter, name: str) -> dict[str, object]:
    (span,) = [s for s in exporter.get_finished_spans() if s.name == name]
    return attrs(span)


STEP_CONTEXT = {
    "agentledger.run.id": "run-1",
    "agentledger.workflow": "support-ticket",
    "agentledger.step.name": "classify",
    "agentledger.step.id": "classify-1",
    "agentledger.tier": "small",
    "agentledger.attempt": 2,
    "agentledger.task.complexity": "low",
    "agentledger.task.sensitivity": "external",
    "agentledger.task.context": "long",
}


def test_foreign_span_on_the_ledgers_provider_gets_run_and_step(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    # What an instrumentation library does when handed ledger.tracer_provider.
    foreign = ledger.tracer_provider.get_tracer("some.instrumentation")
    with ledger.run("support-ticket", run_id="run-1") as run:
        with run.step(
            "classify",
            tier="small",
            attempt=2,
            step_id="classify-1",
            complexity="low",
            sensitivity="external",
            context="long",
        ):
            with foreign.start_as_current_span("POST /v1/chat/completions"):
                with foreign.start_as_current_span("dns lookup"):
                    pass
        with foreign.start_as_current_span("between steps"):
            pass
    with foreign.start_as_current_span("outside any run"):
        pass
    assert ledger.flush()

    assert _one_named(exporter, "POST /v1/chat/completions") == STEP_CONTEXT
    assert _one_named(exporter, "dns lookup") == STEP_CONTEXT
    assert _one_named(exporter, "between steps") == {
        "agentledger.run.id": "run-1",
        "agentledger.workflow": "support-ticket",
    }
    assert _one_named(exporter, "outside any run") == {}


def test_foreign_span_on_the_apps_provider_gets_run_and_step_and_nests_under_the_step(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    app_provider: TracerProvider,
    app_exporter: InMemorySpanExporter,
) -> None:
    app_provider.add_span_processor(agentledger.PropagatingSpanProcessor())
    app_tracer = app_provider.get_tracer("app")
    with ledger.run("support-ticket", run_id="run-1") as run:
        with run.step(
            "classify",
            tier="small",
            attempt=2,
            step_id="classify-1",
            complexity="low",
            sensitivity="external",
            context="long",
        ):
            with app_tracer.start_as_current_span("http call"):
                pass

    assert _one_named(app_exporter, "http call") == STEP_CONTEXT
    (http_call,) = app_exporter.get_finished_spans()
    step = only(exporter.get_finished_spans(), attr.KIND_STEP)
    assert http_call.parent is not None
    assert http_call.parent.span_id == step.context.span_id
    assert http_call.context.trace_id == step.context.trace_id


def test_attributes_a_foreign_span_already_has_are_kept(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    foreign = ledger.tracer_provider.get_tracer("some.instrumentation")
    with ledger.run("wf") as run, run.step("classify", tier="small"):
        with foreign.start_as_current_span("call", attributes={"agentledger.tier": "custom"}):
            pass
    ledger.flush()

    copied = _one_named(exporter, "call")
    assert copied["agentledger.tier"] == "custom"
    assert copied["agentledger.step.name"] == "classify"


def test_ledger_spans_nest_under_the_apps_current_span(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    app_provider: TracerProvider,
    app_exporter: InMemorySpanExporter,
) -> None:
    global_before = trace.get_tracer_provider()
    app_tracer = app_provider.get_tracer("app")
    with app_tracer.start_as_current_span("POST /tickets") as request:
        with ledger.run("support-ticket") as run, run.step("classify") as step:
            with step.llm(model="gpt-4o-mini"):
                with app_tracer.start_as_current_span("httpx send"):
                    pass

    ours = exporter.get_finished_spans()
    run_span = only(ours, attr.KIND_RUN)
    llm_span = only(ours, attr.KIND_LLM)
    request_context = request.get_span_context()
    # Our run is a child of the application's request span, in its trace.
    assert run_span.parent is not None
    assert run_span.parent.span_id == request_context.span_id
    assert {s.context.trace_id for s in ours} == {request_context.trace_id}
    # The application's span inside our call nests under the call.
    (httpx_send,) = [s for s in app_exporter.get_finished_spans() if s.name == "httpx send"]
    assert httpx_send.parent is not None
    assert httpx_send.parent.span_id == llm_span.context.span_id
    # The request's trace may hold several runs, so the run id is not the trace id.
    assert run.run_id != format(request_context.trace_id, "032x")
    # Neither the application's spans nor the global provider were touched.
    assert trace.get_tracer_provider() is global_before
    assert trace.get_tracer_provider() is not ledger.tracer_provider
    assert {s.name for s in app_exporter.get_finished_spans()} == {"POST /tickets", "httpx send"}


def test_ledger_spans_are_kept_when_the_app_does_not_sample(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    with unsampled.get_tracer("app").start_as_current_span("sampled out"):
        with ledger.run("wf") as run, run.llm(model="gpt-4o") as call:
            call.record_usage(input_tokens=10, output_tokens=1)
    unsampled.shutdown()

    # Cost accounting must see every call, whatever the application samples.
    assert (
        attrs(only(exporter.get_finished_spans(), attr.KIND_LLM))["gen_ai.usage.input_tokens"] == 10
    )
