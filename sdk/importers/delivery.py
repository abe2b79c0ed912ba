"""A ledger for replays (imports, the demo) that says how many spans reached the collector.

A live agent must never wait for the collector; a replay is a batch job whose user wants to
know whether the data arrived. So a replay's ledger flushes once at the end instead of after
every run, waits longer for it, counts what the exporter accepted and refused, and stops
trying after the first refused batch (replaying again is safe: ids are deterministic, so
spans that did arrive are not stored twice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentledger import credentials, validation
from agentledger.importers.ids import DeterministicIdGenerator

if TYPE_CHECKING:
    from agentledger import Ledger

__all__ = ["CountingExporter", "delivery_code", "open_ledger"]

logger = logging.getLogger(__name__)

#: How long the final flush of a replay may take: thousands of spans, not one run's.
REPLAY_FLUSH_TIMEOUT_SECONDS = 60.0
#: How long one OTLP request of a replay may take, retries included.
REPLAY_EXPORT_TIMEOUT_SECONDS = 10.0
TRACES_PATH = "/v1/traces"


class CountingExporter(SpanExporter):
    """Wraps an exporter; counts exported and failed spans, and fails fast after a failure."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.exported_spans = 0
        self.failed_spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            given_up = self.failed_spans > 0
        if given_up:
            # The collector refused or did not answer an earlier batch; waiting out the
            # exporter's retries for every later batch would hold the replay for minutes.
            result = SpanExportResult.FAILURE
        else:
            try:
                result = self._inner.export(spans)
            except Exception:  # broad: a crashing exporter counts as a failed batch
                logger.warning(
                    "replay: exporter failed; batch of %d spans lost", len(spans), exc_info=True
                )
                result = SpanExportResult.FAILURE
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.exported_spans += len(spans)
            else:
                self.failed_spans += len(spans)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


def open_ledger(
    service_name: str,
    *,
    endpoint: str,
    exporter: SpanExporter | None,
    ids: DeterministicIdGenerator,
    service_version: str | None = None,
) -> tuple[Ledger, CountingExporter]:
    """A ledger for a replay, and the counter of what its exporter delivered.

    Without ``exporter``, spans go over OTLP/HTTP to ``{endpoint}/v1/traces``.

    Raises:
        ValueError: ``endpoint`` is not an http:// or https:// URL.
    """
    from agentledger import Ledger

    if exporter is None:
        # Imported here: reading files or building a demo needs no protobuf or requests.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = validation.require_endpoint(endpoint, "endpoint") + TRACES_PATH
        exporter = OTLPSpanExporter(
            endpoint=url,
            timeout=REPLAY_EXPORT_TIMEOUT_SECONDS,
            headers=credentials.bearer_headers(),  # AGENTLEDGER_API_KEY, set by --api-key
        )
    counting = CountingExporter(exporter)
    ledger = Ledger(
        service_name,
        service_version=service_version,
        exporter=counting,
        id_generator=ids,
        flush_timeout_seconds=REPLAY_FLUSH_TIMEOUT_SECONDS,
        export_timeout_seconds=REPLAY_EXPORT_TIMEOUT_SECONDS,
        flush_on_run_end=False,
    )
    return ledger, counting


def delivery_code(
    command: str,
    endpoint: str,
    flushed: bool,
    delivered: CountingExporter,
    *,
    out: TextIO,
    err: TextIO,
) -> int:
    """Report what reached the collector; 0 when everything did, else 1."""
    if flushed and delivered.failed_spans == 0:
        print(f"{delivered.exported_spans} spans delivered", file=out)
        return 0
    lost = delivered.failed_spans if flushed else "some"
    print(
        f"{command}: {lost} spans did not reach {endpoint} (is the collector running?); "
        "running the command again is safe: spans already stored are not duplicated",
        file=err,
    )
    return 1
