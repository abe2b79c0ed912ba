"""The replay ledger reports what reached the collector, and gives up after a failure."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentledger.importers.delivery import CountingExporter
from agentledger.importers.tau2 import import_files


class Refusing(SpanExporter):
    """A collector that refuses everything; counts the batches it was asked to take."""

    def __init__(self) -> None:
        self.batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches += 1
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        pass


class Accepting(Refusing):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.batches += 1
        return SpanExportResult.SUCCESS


def test_counting_exporter_counts_and_stops_after_the_first_refusal() -> None:
    refusing = Refusing()
    counting = CountingExporter(refusing)
    batch: list[ReadableSpan] = [ReadableSpan(name=str(i)) for i in range(3)]

    results = [counting.export(batch) for _ in range(4)]

    assert results == [SpanExportResult.FAILURE] * 4
    assert refusing.batches == 1  # later batches fail at once, without waiting on retries
    assert (counting.exported_spans, counting.failed_spans) == (0, 12)


def test_counting_exporter_counts_delivered_spans() -> None:
    counting = CountingExporter(Accepting())
    counting.export([ReadableSpan(name="a"), ReadableSpan(name="b")])
    assert (counting.exported_spans, counting.failed_spans) == (2, 0)


def _one_run_file(tmp_path: Path) -> str:
    path = tmp_path / "one.json"
    path.write_text(
        json.dumps(
            {
                "info": {
                    "agent_info": {"llm": "gpt-4.1"},
                    "environment_info": {"domain_name": "x"},
                },
                "simulations": [
                    {
                        "id": "r1",
                        "start_time": "2025-01-01T00:00:00",
                        "end_time": "2025-01-01T00:00:02",
                        "reward_info": {"reward": 1.0},
                        "messages": [
                            {
                                "role": "assistant",
                                "timestamp": "2025-01-01T00:00:01",
                                "cost": 0.01,
                                "usage": {"prompt_tokens": 10, "completion_tokens": 2},
                            }
                        ],
                    }
                ],
            }
        )
    )
    return str(path)


def test_an_import_that_the_collector_refuses_exits_1_and_says_so(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()

    code = import_files(
        [_one_run_file(tmp_path)],
        endpoint="http://127.0.0.1:9",
        exporter=Refusing(),
        out=out,
        err=err,
    )

    assert code == 1
    # One run: a run span, a step span and an llm span.
    assert "3 spans did not reach http://127.0.0.1:9 (is the collector running?)" in err.getvalue()


def test_an_import_with_a_bad_endpoint_sends_nothing(tmp_path: Path) -> None:
    err = io.StringIO()

    code = import_files([_one_run_file(tmp_path)], endpoint="localhost:4318", err=err)

    assert code == 2
    assert "endpoint must be an http:// or https:// URL, got 'localhost:4318'" in err.getvalue()
