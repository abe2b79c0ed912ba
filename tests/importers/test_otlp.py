"""OTLP/JSON files into ``agentledger serve`` through ``agentledger import otlp``."""

from __future__ import annotations

import io
import json
from pathlib import Path

from agentledger.importers import otlp
from tests.conftest import SHARED_DATA, Collector

EXAMPLE = SHARED_DATA / "otlp-proto-example" / "trace.json"


def test_the_canonical_example_is_stored_once(collector: Collector) -> None:
    for _ in range(2):  # a second import stores nothing new
        out = io.StringIO()
        assert otlp.import_files([str(EXAMPLE)], endpoint=collector.url, out=out) == 0
        assert "read 1 spans, sent 1 spans, skipped 0 items" in out.getvalue()
    (row,) = collector.get("/api/v1/metrics").json()
    # One span without GenAI attributes: a run (its trace) with no calls.
    assert (row["runs"], row["calls"], row["input_tokens"]) == (1, 0, 0)


def test_a_foreign_llm_span_with_old_names_is_counted(collector: Collector, tmp_path: Path) -> None:
    span = otlp.span(
        trace_id="1" * 32,
        span_id="2" * 16,
        name="chat",
        start_ns=1_700_000_000 * 10**9,
        end_ns=1_700_000_001 * 10**9,
        attrs={
            "gen_ai.system": "openai",
            "gen_ai.request.model": "old-style-model",
            "gen_ai.usage.prompt_tokens": 70,
            "gen_ai.usage.completion_tokens": 7,
        },
    )
    path = tmp_path / "old.json"
    path.write_text(json.dumps(otlp.request({"agentledger.project": "old"}, "x", [span])))
    assert otlp.import_files([str(path)], endpoint=collector.url, out=io.StringIO()) == 0
    (row,) = collector.get("/api/v1/metrics", project="old").json()
    assert (row["calls"], row["input_tokens"], row["output_tokens"]) == (1, 70, 7)


def test_invalid_spans_are_skipped_and_counted(tmp_path: Path) -> None:
    good = {"traceId": "a" * 32, "spanId": "b" * 16, "name": "s", "startTimeUnixNano": "1"}
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            good,
                            {**good, "traceId": "0" * 32},
                            {**good, "spanId": "xyz"},
                            3,
                        ]
                    }
                ]
            },
            {"resource": {}},
        ]
    }
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(document))
    report = otlp.ImportReport()
    data = otlp.read_file(str(path), report)
    assert len(data["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 1
    assert dict(report.skipped) == {
        "span without a valid 'traceId' (32 hex digits, not all zero)": 1,
        "span without a valid 'spanId' (16 hex digits, not all zero)": 1,
        "span is not an object": 1,
        "resourceSpans entry without a 'scopeSpans' list": 1,
    }


def test_a_file_of_another_format_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[1, 2]")
    err = io.StringIO()
    assert otlp.import_files([str(path)], endpoint="http://127.0.0.1:9", err=err) == 2
    assert "missing list field 'resourceSpans'" in err.getvalue()
