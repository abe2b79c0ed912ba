"""Langfuse exports replayed into ``agentledger serve``: stored tokens per trace, by hand.

The expected figures are computed here straight from each file: every observation's usage
is read from its original span attributes (OTel GenAI, the older OTel names, OpenInference,
pydantic-ai), else from Langfuse's ``usageDetails`` (where the Langfuse SDK's own
attributes went); a span counts when it carries usage and no other carrier names it as
parent (the innermost-carrier rule). Each file goes to its own project.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from agentledger.importers import langfuse
from tests.conftest import SHARED_DATA, Collector

FILES = sorted((SHARED_DATA / "langfuse-framework-traces").glob("*.trace.json"))
INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
CACHED = ("gen_ai.usage.cache_read.input_tokens", "llm.token_count.prompt_details.cache_read")
COST = ("operation.cost", "gen_ai.usage.cost")


def _first(attributes: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        if key in attributes:
            return int(attributes[key])
    return None


def expected_usage(path: Path) -> tuple[int, int, int, int]:
    """(input, output, cached, calls) of the innermost usage carriers of one file."""
    observations = json.loads(path.read_text("utf-8"))["observations"]
    usage: dict[str, tuple[int, int, int]] = {}
    parents: dict[str, str] = {}
    for observation in observations:
        metadata = observation.get("metadata") or {}
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        attributes = metadata.get("attributes") or {}
        parents[observation["id"]] = observation.get("parentObservationId") or ""
        tokens_in, tokens_out = _first(attributes, INPUT), _first(attributes, OUTPUT)
        if tokens_in is not None or tokens_out is not None:
            usage[observation["id"]] = (
                tokens_in or 0,
                tokens_out or 0,
                _first(attributes, CACHED) or 0,
            )
        elif details := observation.get("usageDetails"):
            # Langfuse's usage types are disjoint: input excludes its cached part.
            ins = sum(v for k, v in details.items() if k == "input" or k.startswith("input_"))
            outs = sum(v for k, v in details.items() if k == "output" or k.startswith("output_"))
            usage[observation["id"]] = (ins, outs, details.get("input_cache_read", 0))
        elif any(key in attributes for key in COST):
            usage[observation["id"]] = (0, 0, 0)
    carrier_parents = {parents[key] for key in usage}
    innermost = [value for key, value in usage.items() if key not in carrier_parents]
    return (
        sum(v[0] for v in innermost),
        sum(v[1] for v in innermost),
        sum(v[2] for v in innermost),
        len(innermost),
    )


@pytest.fixture(scope="module")
def imported(collector: Collector) -> Collector:
    for path in FILES:
        out, err = io.StringIO(), io.StringIO()
        code = langfuse.import_files(
            [str(path)], endpoint=collector.url, project=path.stem, out=out, err=err
        )
        assert code == 0, err.getvalue()
        assert "skipped 0 items" in out.getvalue(), out.getvalue()
    return collector


def test_there_are_fifteen_shared_files() -> None:
    assert len(FILES) == 15


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_stored_tokens_per_trace_follow_the_innermost_carriers(
    imported: Collector, path: Path
) -> None:
    tokens_in, tokens_out, cached, calls = expected_usage(path)
    rows = imported.get("/api/v1/metrics", project=path.stem).json()
    assert len(rows) == 1
    (row,) = rows
    assert row["runs"] == 1
    assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (
        tokens_in,
        tokens_out,
        cached,
    )
    assert row["calls"] == calls


def test_a_second_import_stores_nothing_new(imported: Collector) -> None:
    path = SHARED_DATA / "langfuse-framework-traces" / "pydantic-ai-tools-2025-12-04.trace.json"
    before = imported.get("/api/v1/metrics", project=path.stem).json()
    code = langfuse.import_files(
        [str(path)], endpoint=imported.url, project=path.stem, out=io.StringIO()
    )
    assert code == 0
    assert imported.get("/api/v1/metrics", project=path.stem).json() == before


def test_a_file_of_another_format_sends_nothing(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"resourceSpans": []}')
    err = io.StringIO()
    code = langfuse.import_files([str(other)], endpoint="http://127.0.0.1:9", err=err)
    assert code == 2
    assert "not a Langfuse trace export" in err.getvalue()


def test_bad_observations_are_skipped_with_reasons(tmp_path: Path) -> None:
    trace_id = "ab" * 16
    good = {
        "id": "cd" * 8,
        "traceId": trace_id,
        "startTime": "2025-01-01T00:00:00Z",
        "metadata": "{}",
        "name": "ok",
    }
    data = {
        "trace": {"id": trace_id},
        "observations": [
            good,
            {**good, "id": "zz"},
            {**good, "id": "ef" * 8, "startTime": "yesterday"},
            7,
        ],
    }
    path = tmp_path / "x.trace.json"
    path.write_text(json.dumps(data))
    report = langfuse.ImportReport()
    found = langfuse.read_file(str(path), report)
    assert found.span_count == 1
    assert report.read == 4
    assert dict(report.skipped) == {
        "observation without an 'id' of 16 hex digits": 1,
        "observation without a valid 'startTime'": 1,
        "observation is not an object": 1,
    }
