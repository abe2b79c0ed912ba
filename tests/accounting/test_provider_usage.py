"""``LlmCall.record_response``: each provider's usage shape in, the OpenTelemetry convention out.

The convention: input counts every prompt token, cache reads and cache writes included;
output counts every generated token, reasoning included. Each expected figure is derived in
the comment beside it from what the provider's documentation says its fields mean.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

import agentledger
from agentledger.schemas import attributes as attr
from agentledger.usage import UsageNotFound, extract_usage
from tests.accounting.conftest import strict_json
from tests.conftest import Collector

USAGE_KEYS = (
    attr.INPUT_TOKENS,
    attr.OUTPUT_TOKENS,
    attr.CACHE_READ_TOKENS,
    attr.CACHE_WRITE_TOKENS,
    attr.REASONING_TOKENS,
)


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
    made = agentledger.Ledger("usage-tests", exporter=exporter, flush_timeout_seconds=5.0)
    yield made
    made.shutdown()


def _recorded(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    response: object,
    *,
    provider: str | None,
    api_flavor: str | None = None,
    call_provider: str = "test",
) -> dict[str, Any]:
    """The usage attributes (and response model) of an llm span after record_response."""
    with (
        ledger.run("usage") as run,
        run.llm(model="requested-model", provider=call_provider) as call,
    ):
        call.record_response(response, provider=provider, api_flavor=api_flavor)
    (span,) = [
        s
        for s in exporter.get_finished_spans()
        if (s.attributes or {}).get(attr.SPAN_KIND) == attr.KIND_LLM
    ]
    attributes = dict(span.attributes or {})
    keys = (*USAGE_KEYS, attr.RESPONSE_MODEL)
    return {key: attributes[key] for key in keys if key in attributes}


def _expect(
    input_tokens: int,
    output_tokens: int,
    *,
    cache_read: int | None = None,
    cache_write: int | None = None,
    reasoning: int | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    expected: dict[str, Any] = {attr.INPUT_TOKENS: input_tokens, attr.OUTPUT_TOKENS: output_tokens}
    for key, value in (
        (attr.CACHE_READ_TOKENS, cache_read),
        (attr.CACHE_WRITE_TOKENS, cache_write),
        (attr.REASONING_TOKENS, reasoning),
        (attr.RESPONSE_MODEL, model),
    ):
        if value is not None:
            expected[key] = value
    return expected


# OpenAI counts cached tokens inside prompt_tokens and reasoning inside completion_tokens.
OPENAI_CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_735_689_600,
    "model": "m-large",
    "choices": [],
    "usage": {
        "prompt_tokens": 1_000,
        "completion_tokens": 200,
        "total_tokens": 1_200,
        "prompt_tokens_details": {"cached_tokens": 300},
        "completion_tokens_details": {"reasoning_tokens": 50},
    },
}
OPENAI_RESPONSES = {
    "id": "resp-1",
    "object": "response",
    "model": "m-large",
    "usage": {
        "input_tokens": 1_000,
        "input_tokens_details": {"cached_tokens": 300},
        "output_tokens": 200,
        "output_tokens_details": {"reasoning_tokens": 50},
        "total_tokens": 1_200,
    },
}
# Anthropic's input_tokens leave out cache reads and writes: all input = 1,000 + 300 + 100.
ANTHROPIC = {
    "id": "msg_1",
    "type": "message",
    "model": "m-large",
    "usage": {
        "input_tokens": 1_000,
        "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 100,
        "output_tokens": 200,
    },
}
# Gemini's thoughts come beside the candidates: output = 1,000 + 1,000; cached is inside prompt.
GEMINI = {
    "modelVersion": "m-large",
    "usageMetadata": {
        "promptTokenCount": 20_000,
        "cachedContentTokenCount": 5_000,
        "candidatesTokenCount": 1_000,
        "thoughtsTokenCount": 1_000,
        "totalTokenCount": 22_000,
    },
}


@pytest.mark.parametrize(
    ("provider", "api_flavor", "response", "expected"),
    [
        pytest.param(
            "openai",
            "chat",
            OPENAI_CHAT,
            _expect(1_000, 200, cache_read=300, reasoning=50, model="m-large"),
            id="openai-chat",
        ),
        pytest.param(
            "openai",
            None,
            OPENAI_CHAT,
            _expect(1_000, 200, cache_read=300, reasoning=50, model="m-large"),
            id="openai-chat-flavor-guessed",
        ),
        pytest.param(
            "openai",
            "responses",
            OPENAI_RESPONSES,
            _expect(1_000, 200, cache_read=300, reasoning=50, model="m-large"),
            id="openai-responses",
        ),
        pytest.param(
            "openai",
            None,
            OPENAI_RESPONSES,
            _expect(1_000, 200, cache_read=300, reasoning=50, model="m-large"),
            id="openai-responses-flavor-guessed",
        ),
        pytest.param(
            "anthropic",
            None,
            ANTHROPIC,
            _expect(1_400, 200, cache_read=300, cache_write=100, model="m-large"),
            id="anthropic-messages",
        ),
        pytest.param(
            "gcp.gemini",
            None,
            GEMINI,
            _expect(20_000, 2_000, cache_read=5_000, reasoning=1_000, model="m-large"),
            id="gemini-generate-content",
        ),
        pytest.param(
            "google",
            None,
            GEMINI,
            _expect(20_000, 2_000, cache_read=5_000, reasoning=1_000, model="m-large"),
            id="gemini-genai-prices-id",
        ),
    ],
)
def test_a_provider_response_is_recorded_in_the_otel_convention(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    provider: str,
    api_flavor: str | None,
    response: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    got = _recorded(ledger, exporter, response, provider=provider, api_flavor=api_flavor)

    assert got == expected


# --- streams: the usage arrives in a final chunk or event ------------------------------------


@pytest.mark.parametrize(
    ("provider", "chunk", "expected"),
    [
        pytest.param(
            "openai",
            # Chat Completions with stream_options={"include_usage": true}: a last chunk with
            # no choices and the usage of the whole stream.
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "model": "m-small",
                "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
            _expect(10, 5, model="m-small"),
            id="openai-chat-final-chunk",
        ),
        pytest.param(
            "openai",
            {
                "type": "response.completed",
                "sequence_number": 9,
                "response": {
                    "id": "r",
                    "model": "m-small",
                    "usage": {
                        "input_tokens": 10,
                        "output_tokens": 5,
                        "output_tokens_details": {"reasoning_tokens": 2},
                    },
                },
            },
            _expect(10, 5, reasoning=2, model="m-small"),
            id="openai-responses-completed-event",
        ),
        pytest.param(
            "anthropic",
            # message_delta carries cumulative counts; input again leaves out the cache parts.
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {
                    "input_tokens": 10,
                    "cache_read_input_tokens": 4,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": 5,
                },
            },
            _expect(14, 5, cache_read=4, cache_write=0),
            id="anthropic-message-delta",
        ),
        pytest.param(
            "gcp.gemini",
            # Each streamed chunk repeats the running totals; the last one is complete.
            {
                "modelVersion": "m-small",
                "candidates": [],
                "usageMetadata": {
                    "promptTokenCount": 10,
                    "candidatesTokenCount": 5,
                    "thoughtsTokenCount": 3,
                },
            },
            _expect(10, 8, reasoning=3, model="m-small"),
            id="gemini-last-chunk",
        ),
    ],
)
def test_the_final_chunk_of_a_stream_gives_the_usage(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    provider: str,
    chunk: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    assert _recorded(ledger, exporter, chunk, provider=provider) == expected


# --- client objects ----------------------------------------------------------------------------


class _GenaiModel(BaseModel):
    """Like google-genai's models: snake_case fields, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class _UsageMetadata(_GenaiModel):
    prompt_token_count: int | None = None
    cached_content_token_count: int | None = None
    candidates_token_count: int | None = None
    thoughts_token_count: int | None = None


class _GenerateContentResponse(_GenaiModel):
    model_version: str | None = None
    usage_metadata: _UsageMetadata | None = None


def test_a_pydantic_client_object_is_read_by_its_wire_names(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    response = _GenerateContentResponse(
        model_version="m-large",
        usage_metadata=_UsageMetadata(
            prompt_token_count=20_000, candidates_token_count=1_000, thoughts_token_count=1_000
        ),
    )

    got = _recorded(ledger, exporter, response, provider="gcp.gemini")

    assert got == _expect(20_000, 2_000, reasoning=1_000, model="m-large")


def test_a_gemini_dump_in_snake_case_is_read_too(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    dumped = {
        "model_version": "m-large",
        "usage_metadata": {
            "prompt_token_count": 20_000,
            "cached_content_token_count": None,
            "candidates_token_count": 1_000,
            "thoughts_token_count": 1_000,
        },
    }

    got = _recorded(ledger, exporter, dumped, provider="gcp.gemini")

    assert got == _expect(20_000, 2_000, reasoning=1_000, model="m-large")


def test_openai_client_objects_are_read(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    types = pytest.importorskip("openai.types.chat")
    completion = types.ChatCompletion.model_validate(OPENAI_CHAT)
    chunk = types.ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m-small",
            "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    )

    assert _recorded(ledger, exporter, completion, provider="openai") == _expect(
        1_000, 200, cache_read=300, reasoning=50, model="m-large"
    )
    exporter.clear()
    assert _recorded(ledger, exporter, chunk, provider="openai") == _expect(10, 5, model="m-small")


# --- what cannot be read stays unknown, and never raises ------------------------------------


@pytest.mark.parametrize(
    ("response", "provider", "api_flavor"),
    [
        pytest.param({"model": "m-large", "choices": []}, "openai", None, id="no-usage"),
        pytest.param({"model": "m-large", "usage": None}, "openai", None, id="null-usage"),
        pytest.param({"modelVersion": "m-large"}, "gcp.gemini", None, id="gemini-no-metadata"),
        pytest.param(
            # A stream event that carries only the output: the input is not guessed.
            {"type": "message_delta", "usage": {"output_tokens": 15}},
            "anthropic",
            None,
            id="anthropic-delta-without-input",
        ),
        pytest.param(OPENAI_CHAT, "openai", "responses", id="wrong-flavor"),
        pytest.param(OPENAI_CHAT, "no-such-provider", None, id="unknown-provider"),
        pytest.param(OPENAI_CHAT, "openai", "no-such-flavor", id="unknown-flavor"),
        pytest.param(42, "openai", None, id="not-a-response"),
        pytest.param(object(), "openai", None, id="an-object-without-model-dump"),
    ],
)
def test_a_response_without_readable_usage_records_nothing(
    ledger: agentledger.Ledger,
    exporter: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
    response: object,
    provider: str,
    api_flavor: str | None,
) -> None:
    with caplog.at_level(logging.WARNING, logger="agentledger.calls"):
        got = _recorded(ledger, exporter, response, provider=provider, api_flavor=api_flavor)

    assert got == {}  # no token attribute at all: unknown, never 0 or an estimate
    assert "usage left unknown" in caplog.text


def test_a_model_unknown_to_genai_prices_still_gives_its_usage() -> None:
    # genai_prices.extract_usage raises LookupError for such a model; ours must not.
    usage = extract_usage(ANTHROPIC, provider="anthropic")

    assert (usage.model, usage.input_tokens, usage.cache_write_tokens) == ("m-large", 1_400, 100)


def test_extract_usage_raises_usage_not_found_for_the_caller() -> None:
    with pytest.raises(UsageNotFound, match="no usage found for provider 'openai'"):
        extract_usage({"model": "m-large"}, provider="openai")


def test_the_calls_own_provider_is_the_default(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    got = _recorded(ledger, exporter, ANTHROPIC, provider=None, call_provider="anthropic")

    assert got[attr.INPUT_TOKENS] == 1_400


# --- through the collector: the Anthropic shape priced from the price file --------------------


def test_an_anthropic_response_is_priced_with_its_cache_parts(
    priced_collector: Collector,
) -> None:
    ledger = agentledger.Ledger(
        "usage-tests", endpoint=priced_collector.url, project="shapes", flush_timeout_seconds=10
    )
    with (
        ledger.run("shapes", run_id="anthropic-cached") as run,
        run.llm(model="m-large", provider="anthropic") as call,
    ):
        call.record_response(ANTHROPIC)
    assert ledger.flush(timeout_seconds=10)
    ledger.shutdown()

    detail = strict_json(priced_collector.get("/api/v1/runs/anthropic-cached", project="shapes"))
    (call,) = detail["calls_outside_steps"]
    assert (call["input_tokens"], call["cached_tokens"], call["cache_write_tokens"]) == (
        1_400,
        300,
        100,
    )
    # Uncached 1,000 * 3.00 + reads 300 * 0.30 + writes 100 * 3.75 + output 200 * 15.00,
    # per million: 0.003 + 0.00009 + 0.000375 + 0.003 = 0.006465.
    assert call["cost_usd"] == Decimal("0.006465")
    assert call["cost_source"] == "price-file"
