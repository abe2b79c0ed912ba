"""Aider leaderboard records into ``agentledger serve``: exact aggregates, by hand."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from agentledger.importers import aider
from tests.conftest import SHARED_DATA, Collector

FILE = SHARED_DATA / "aider-leaderboards" / "r1_architect.yml"


@pytest.fixture(scope="module")
def imported(collector: Collector) -> Collector:
    out = io.StringIO()
    assert aider.import_files([str(FILE)], endpoint=collector.url, out=out) == 0, out.getvalue()
    assert "skipped 0 items" in out.getvalue()
    return collector


def test_each_record_gives_its_success_rate_and_cost_per_correct_outcome(
    imported: Collector,
) -> None:
    records = yaml.safe_load(FILE.read_text("utf-8"))
    response = imported.get("/api/v1/metrics", group_by="model")
    rows = {r["model"]: r for r in json.loads(response.text, parse_float=Decimal)}
    assert len(rows) == len(records) == 5
    for record in records:
        row = rows[record["model"]]
        cases, first, after = record["test_cases"], record["pass_num_1"], record["pass_num_2"]
        assert (row["runs"], row["correct_runs"]) == (cases, after)
        # Every exercise has attempt 1; those not solved at once have a retry.
        assert row["attempts"] == row["calls"] == cases + (cases - first)
        cost = Decimal(str(record["total_cost"]))
        assert row["cost_usd"] == pytest.approx(cost, abs=Decimal("1e-9"))
        assert row["cost_per_correct_outcome_usd"] == pytest.approx(
            cost / after, abs=Decimal("1e-9")
        )
        # Even split per attempt: all attempts over the accepted one of each exercise.
        assert float(row["cost_retry_amplification"]) == pytest.approx((2 * cases - first) / cases)


def test_records_that_cannot_be_runs_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "board.yml"
    path.write_text(
        yaml.safe_dump(
            [
                {
                    "model": "m",
                    "dirname": "d1",
                    "test_cases": 10,
                    "pass_num_1": 2,
                    "pass_num_2": 5,
                    "total_cost": 1.0,
                    "date": "2025-01-01",
                },
                {"model": "m", "dirname": "d2", "test_cases": 0, "date": "2025-01-01"},
                {
                    "model": "m",
                    "dirname": "d3",
                    "test_cases": 10,
                    "pass_num_1": 6,
                    "pass_num_2": 5,
                    "date": "2025-01-01",
                },
                "junk",
            ]
        )
    )
    report = aider.ImportReport()
    records = aider.read_file(str(path), report)
    assert [(r.dirname, r.attempts) for r in records] == [("d1", 18)]
    assert dict(report.skipped) == {
        "record without a positive 'test_cases'": 1,
        "record whose pass counts are not 0 <= first <= retry <= cases": 1,
        "record is not a mapping": 1,
    }
