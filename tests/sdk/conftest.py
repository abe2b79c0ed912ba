"""Fixtures for the SDK tests: a ledger that exports into memory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentledger
from agentledger.schemas import attributes as attr

TIER_MAP = {"gpt-4o-mini": "small", "gpt-4o": "frontier", "claude-haiku": "small"}


@pytest.fixture(autouse=True)
def clean_context() -> Iterator[None]:
    """Run each test in an empty OpenTelemetry context, whatever earlier tests left current."""
    token = otel_context.attach(otel_context.Context())
    yield
    otel_context.detach(token)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def ledger(exporter: InMemorySpanExporter) -> Iterator[agentledger.Ledger]:
    made = agentledger.Ledger(
        "support-agent",
        service_version="1.4.0",
        environment="test",
        project="acme",
        exporter=exporter,
        tier_map=TIER_MAP,
        flush_timeout_seconds=5.0,
    )
    yield made
    made.shutdown()


def of_kind(spans: Sequence[ReadableSpan], kind: str) -> list[ReadableSpan]:
    """The spans whose ``agentledger.span.kind`` is ``kind``, in the order they ended."""
    return [s for s in spans if (s.attributes or {}).get(attr.SPAN_KIND) == kind]


def only(spans: Sequence[ReadableSpan], kind: str) -> ReadableSpan:
    (span,) = of_kind(spans, kind)
    return span


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})
