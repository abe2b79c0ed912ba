"""The SWE-bench bash-only board into ``agentledger serve``; metrics by model, by hand.

The shared file is read where it lies (its licence forbids copying it into the project).
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from agentledger.importers import swebench
from tests.conftest import SHARED_DATA, Collector

BOARD_FILE = SHARED_DATA / "swebench-bash-only" / "leaderboards.json"
QUANTUM = Decimal("1e-12")  # the store keeps costs to 12 decimals


def expected_by_model() -> dict[str, tuple[int, int, Decimal]]:
    """(runs, resolved runs, total cost) per model, straight from the file."""
    data = json.loads(BOARD_FILE.read_text("utf-8"))
    (board,) = [b for b in data["leaderboards"] if b["name"] == "bash-only"]
    figures: dict[str, list] = defaultdict(lambda: [0, 0, Decimal(0)])
    for result in board["results"]:
        details = result.get("per_instance_details")
        if not details:
            continue
        (tag,) = [t for t in result["tags"] if t.startswith("Model: ")]
        model = tag.removeprefix("Model: ")
        for item in details.values():
            figures[model][0] += 1
            figures[model][1] += item["resolved"] is True
            figures[model][2] += Decimal(str(item["cost"])).quantize(QUANTUM)
    return {model: (runs, resolved, cost) for model, (runs, resolved, cost) in figures.items()}


@pytest.fixture(scope="module")
def imported(collector: Collector) -> Collector:
    out = io.StringIO()
    code = swebench.import_file(str(BOARD_FILE), endpoint=collector.url, out=out)
    assert code == 0, out.getvalue()
    return collector


def _rows(collector: Collector) -> dict[str, dict]:
    response = collector.get("/api/v1/metrics", group_by="model")
    assert response.status_code == 200, response.text
    return {row["model"]: row for row in json.loads(response.text, parse_float=Decimal)}


def test_metrics_by_model_equal_the_file(imported: Collector) -> None:
    expected = expected_by_model()
    rows = _rows(imported)
    assert len(expected) == 25
    assert set(rows) == set(expected)
    for model, (runs, resolved, cost) in expected.items():
        row = rows[model]
        assert (row["runs"], row["known_runs"], row["correct_runs"]) == (runs, runs, resolved)
        assert row["calls"] == runs
        assert row["input_tokens"] == 0 and row["output_tokens"] == 0
        assert Decimal(row["cost_usd"]) == cost, model
        per_correct = row["cost_per_correct_outcome_usd"]
        if resolved:
            assert Decimal(per_correct) == pytest.approx(cost / resolved, rel=Decimal("1e-9"))
        else:
            assert per_correct is None


def test_a_second_import_stores_nothing_new(imported: Collector) -> None:
    before = _rows(imported)
    assert swebench.import_file(str(BOARD_FILE), endpoint=imported.url, out=io.StringIO()) == 0
    assert _rows(imported) == before


def test_the_summary_lists_aggregate_only_results() -> None:
    report = swebench.ImportReport()
    runs = swebench.read_file(str(BOARD_FILE), report)
    assert len(runs) == 25 * 500
    assert report.skipped == {"result without 'per_instance_details' (aggregate only)": 6}


def test_bad_instances_are_skipped_with_reasons(tmp_path: Path) -> None:
    board = {
        "name": "bash-only",
        "results": [
            {
                "tags": ["Model: m"],
                "folder": "f",
                "date": "2025-01-02",
                "per_instance_details": {
                    "a": {"cost": 0.5, "api_calls": 3, "resolved": True},
                    "b": {"cost": "x", "api_calls": 3, "resolved": True},
                    "c": {"cost": 0.1, "api_calls": 3, "resolved": None},
                },
            },
            {"tags": [], "folder": "g", "date": "2025-01-02", "per_instance_details": {"a": {}}},
        ],
    }
    path = tmp_path / "leaderboards.json"
    path.write_text(json.dumps({"leaderboards": [board]}))
    report = swebench.ImportReport()
    runs = swebench.read_file(str(path), report)
    assert [(r.run_id, r.cost_usd, r.api_calls, r.resolved) for r in runs] == [
        ("swebench:f:a", 0.5, 3, True)
    ]
    assert dict(report.skipped) == {
        "instance without a numeric 'cost'": 1,
        "instance without a boolean 'resolved'": 1,
        "result without a 'Model: ...' tag": 1,
    }


def test_a_file_without_the_board_sends_nothing(tmp_path: Path) -> None:
    path = tmp_path / "leaderboards.json"
    path.write_text(json.dumps({"leaderboards": [{"name": "Lite", "results": []}]}))
    err = io.StringIO()
    assert swebench.import_file(str(path), endpoint="http://127.0.0.1:9", err=err) == 2
    assert "no board named 'bash-only'" in err.getvalue()
