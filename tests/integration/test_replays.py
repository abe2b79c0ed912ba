"""``agentledger import tau2`` and ``agentledger demo`` against a real collector, twice each.

The expected figures come straight from the τ²-bench JSON files; the second replay of each
must change nothing (the collector de-duplicates on trace and span id).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DATA, Collector

REAL_FILES = sorted(
    str(path) for path in (SHARED_DATA / "tau2-bench-submissions").glob("*/trajectories/*.json")
)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def by_key(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


@pytest.mark.skipif(len(REAL_FILES) != 2, reason="the two τ²-bench files are not in ../shared")
def test_importing_tau2_twice_gives_the_files_figures_once(collector: Collector) -> None:
    expected: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    for path in REAL_FILES:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        figures = expected[data["info"]["agent_info"]["llm"]]
        for simulation in data["simulations"]:
            figures["runs"] += 1
            figures["correct_runs"] += simulation["reward_info"]["reward"] == 1
            figures["cost_usd"] += simulation["agent_cost"]
            figures["calls"] += sum(
                m["role"] == "assistant" and m.get("usage") is not None
                for m in simulation["messages"]
            )

    for _ in range(2):
        done = cli("import", "tau2", "--endpoint", collector.url, *REAL_FILES)
        assert done.returncode == 0, done.stderr
        response = collector.get("/api/v1/metrics", group_by="model", workflow="tau2-airline")
        assert response.status_code == 200
        rows = by_key(response.json(), "model")

        assert set(rows) == set(expected)
        for model, figures in expected.items():
            row = rows[model]
            assert row["runs"] == figures["runs"] == 50
            assert row["correct_runs"] == figures["correct_runs"]
            assert row["calls"] == figures["calls"]
            assert row["cost_usd"] == pytest.approx(figures["cost_usd"], abs=1e-6)
            assert row["cost_per_correct_outcome_usd"] == pytest.approx(
                figures["cost_usd"] / figures["correct_runs"], abs=1e-6
            )
            assert row["outcome_coverage"] == 1.0
            assert row["retry_amplification"] == 1.0


def _demo_twice(collector: Collector) -> list[dict[str, dict[str, Any]]]:
    figures = []
    for _ in range(2):
        done = cli("demo", "--endpoint", collector.url, "--runs", "60", "--seed", "11")
        assert done.returncode == 0, done.stderr
        assert "60 runs" in done.stdout
        response = collector.get("/api/v1/metrics", group_by="workflow")
        assert response.status_code == 200
        figures.append(
            {row["workflow"]: row for row in response.json() if row["workflow"] != "tau2-airline"}
        )
    return figures


def test_sending_the_demo_twice_changes_no_figure(collector: Collector) -> None:
    # The demo's times hang on the current hour; a pair of sends that straddles the turn
    # of an hour may differ (a review that was pending becomes due), so send it again.
    for _ in range(3):
        hour = time.time() // 3600
        first, second = _demo_twice(collector)
        if time.time() // 3600 == hour:
            break

    assert set(first) == {"support-ticket", "procurement", "contract-digest"}
    # Crashed runs count too: a run exists as soon as any span carries its id.
    assert sum(row["runs"] for row in first.values()) == 60
    assert first == second
