"""The official ``openai`` client, instrumented from PyPI, end to end into ``agentledger serve``.

Traceloop's ``opentelemetry-instrumentation-openai`` records input, output, cache-read and
(for plain calls) reasoning tokens in the OTel GenAI names plus its own
``gen_ai.usage.reasoning_tokens``. The standard OTLP/HTTP exporter sends its spans to a
collector on loopback; the model answers from a fake OpenAI server on loopback. Nothing
leaves the machine.

The price comes from genai-prices' bundled data for ``o4-mini``, which matches OpenAI's
published rates (USD per million tokens): input 1.10, cached input 0.275, output 4.40.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

openai = pytest.importorskip("openai")
instrumentation = pytest.importorskip("opentelemetry.instrumentation.openai")

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from tests.conftest import Collector
from tests.dialects.fake_openai import FakeOpenAI, FakeUsage

MODEL = "o4-mini-2025-04-16"
USAGE = FakeUsage(
    prompt_tokens=1_200, completion_tokens=340, cached_tokens=1_024, reasoning_tokens=256
)
# One call by hand: (1,200 - 1,024) uncached x 1.10 + 1,024 cached x 0.275 + 340 x 4.40,
# per million: 0.0001936 + 0.0002816 + 0.001496 = 0.0019712 USD.
COST_PER_CALL = Decimal("0.0019712")


@pytest.fixture(scope="module")
def recorded(collector: Collector) -> Iterator[Collector]:
    fake = FakeOpenAI(MODEL, USAGE).start()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=collector.url + "/v1/traces", timeout=10))
    )
    instrumentor = instrumentation.OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=fake.base_url, api_key="test-key", max_retries=0)
        tracer = provider.get_tracer("tests.dialects")
        agent_attributes = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "helpdesk",
        }
        with tracer.start_as_current_span("invoke_agent helpdesk", attributes=agent_attributes):
            task = {"traceloop.span.kind": "task", "traceloop.entity.name": "answer"}
            with tracer.start_as_current_span("answer.task", attributes=task):
                client.chat.completions.create(
                    model="o4-mini", messages=[{"role": "user", "content": "hi"}]
                )
                stream = client.chat.completions.create(
                    model="o4-mini",
                    messages=[{"role": "user", "content": "hi again"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                assert (
                    "".join(
                        chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices
                    )
                    == "Hello"
                )
        assert provider.force_flush(timeout_millis=20_000)
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
        fake.stop()
    assert fake.requests == 2
    yield collector


def test_calls_tokens_and_cost_equal_what_the_server_reported(recorded: Collector) -> None:
    (row,) = recorded.get("/api/v1/metrics", group_by="model").json()
    assert row["model"] == MODEL
    assert row["runs"] == 1
    assert row["calls"] == 2
    assert row["input_tokens"] == 2 * 1_200
    assert row["output_tokens"] == 2 * 340
    assert row["cached_tokens"] == 2 * 1_024
    assert Decimal(str(row["cost_usd"])) == 2 * COST_PER_CALL
    assert row["cost_complete"] is True


def test_the_agent_span_names_the_workflow_and_the_task_the_step(recorded: Collector) -> None:
    (row,) = recorded.get("/api/v1/metrics", group_by="workflow,step").json()
    assert (row["workflow"], row["step"]) == ("helpdesk", "answer")
    assert row["calls"] == 2


def test_each_call_is_stored_with_its_details(recorded: Collector) -> None:
    runs = recorded.get("/api/v1/runs").json()
    assert runs["total"] == 1
    detail = recorded.get(f"/api/v1/runs/{runs['runs'][0]['run_id']}").json()
    calls = [call for attempt in detail["attempts"] for call in attempt["calls"]]
    calls += detail.get("calls_outside_steps") or []
    calls = [call for call in calls if call["kind"] in ("", "llm")] or calls
    assert len(calls) == 2
    for call in calls:
        assert (call["input_tokens"], call["output_tokens"], call["cached_tokens"]) == (
            1_200,
            340,
            1_024,
        )
        assert Decimal(str(call["cost_usd"])) == COST_PER_CALL
        assert call["cost_source"] == "genai-prices"
    # The instrumentation records reasoning tokens of plain calls only, not of streams.
    assert sorted(call["reasoning_tokens"] or 0 for call in calls) == [0, 256]
