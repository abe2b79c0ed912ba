"""Export: bursts are not dropped, and a collector that is down never holds the agent."""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import agentledger

BURST = 10_000


class CountingExporter(SpanExporter):
    """Counts exported spans; each batch takes a little while, like a real network."""

    def __init__(self, seconds_per_batch: float = 0.005) -> None:
        self.count = 0
        self.batches = 0
        self._seconds_per_batch = seconds_per_batch
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        time.sleep(self._seconds_per_batch)
        with self._lock:
            self.count += len(spans)
            self.batches += 1
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _burst(ledger: agentledger.Ledger) -> None:
    """One run span, 99 steps and 9,900 llm calls: 10,000 spans as fast as Python goes."""
    with ledger.run("burst") as run:
        for s in range(99):
            with run.step(f"step-{s}", tier="small") as step:
                for _ in range(100):
                    with step.llm(model="gpt-4o-mini") as call:
                        call.record_usage(input_tokens=100, output_tokens=10)


def test_a_burst_of_ten_thousand_spans_is_not_dropped() -> None:
    exporter = CountingExporter()
    ledger = agentledger.Ledger("burst-agent", exporter=exporter, flush_on_run_end=False)
    try:
        _burst(ledger)
        assert ledger.flush(timeout_seconds=60)
        assert exporter.count == BURST
        # Sent in batches, not one request per span.
        assert exporter.batches <= BURST // 100
    finally:
        ledger.shutdown()


# --- over real OTLP/HTTP --------------------------------------------------------------------


class _Receiver(http.server.ThreadingHTTPServer):
    spans: int
    paths: set[str]
    content_types: set[str]
    service_names: set[str]
    lock: threading.Lock


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:  # the name that http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        with self.server.lock:
            self.server.paths.add(self.path)
            self.server.content_types.add(self.headers["Content-Type"])
            for resource_spans in request.resource_spans:
                for kv in resource_spans.resource.attributes:
                    if kv.key == "service.name":
                        self.server.service_names.add(kv.value.string_value)
                for scope_spans in resource_spans.scope_spans:
                    self.server.spans += len(scope_spans.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    """A minimal OTLP/HTTP receiver on a free loopback port that counts spans."""
    server = _Receiver(("127.0.0.1", 0), _Handler)
    server.spans = 0
    server.paths, server.content_types, server.service_names = set(), set(), set()
    server.lock = threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_burst_reaches_a_collector_over_otlp_http(receiver: _Receiver) -> None:
    port = receiver.server_address[1]
    ledger = agentledger.Ledger(
        "burst-agent", endpoint=f"http://127.0.0.1:{port}", flush_timeout_seconds=30
    )
    try:
        _burst(ledger)
        assert ledger.flush()
    finally:
        ledger.shutdown()

    assert receiver.spans == BURST
    assert receiver.paths == {"/v1/traces"}
    assert receiver.content_types == {"application/x-protobuf"}
    assert receiver.service_names == {"burst-agent"}


# --- collector down -------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_collector_down_never_blocks_or_crashes_the_agent(closed_port: int) -> None:
    timeout = 1.0
    ledger = agentledger.Ledger(
        "offline-agent", endpoint=f"http://127.0.0.1:{closed_port}", flush_timeout_seconds=timeout
    )

    started = time.monotonic()
    with ledger.run("wf") as run:
        with run.step("s", tier="small") as step, step.llm(model="gpt-4o-mini") as call:
            call.record_usage(input_tokens=100, output_tokens=10)
        run.set_outcome("correct")
    first_run = time.monotonic() - started

    started = time.monotonic()
    for _ in range(5):
        with ledger.run("wf") as run, run.llm(model="gpt-4o-mini") as call:
            call.record_usage(input_tokens=100, output_tokens=10)
    next_runs = time.monotonic() - started

    started = time.monotonic()
    flushed = ledger.flush()
    ledger.shutdown()
    closing = time.monotonic() - started

    # The first run's end waits for the collector at most the flush timeout.
    assert first_run < timeout + 0.5
    # Then the SDK knows the collector is not answering and does not wait on every run.
    assert next_runs < 0.5
    assert flushed is False
    # flush waits once more, shutdown at most twice: flush, then the exporter's shutdown.
    assert closing < 3 * timeout + 0.5


def test_a_refused_export_stops_later_runs_from_waiting(closed_port: int) -> None:
    # The exporter gives up on a refused connection well before the flush timeout, so the
    # flush "completes"; what must stop the waiting is that the export failed.
    ledger = agentledger.Ledger(
        "offline-agent",
        endpoint=f"http://127.0.0.1:{closed_port}",
        flush_timeout_seconds=30.0,
        export_timeout_seconds=1.0,
    )
    with ledger.run("wf") as run, run.llm(model="gpt-4o-mini") as call:
        call.record_usage(input_tokens=100, output_tokens=10)

    started = time.monotonic()
    for _ in range(5):
        with ledger.run("wf") as run, run.llm(model="gpt-4o-mini") as call:
            call.record_usage(input_tokens=100, output_tokens=10)
    next_runs = time.monotonic() - started
    ledger.shutdown()

    # Five more run ends, each of which would otherwise wait for another failed export.
    assert next_runs < 1.0
