"""Queries: the metrics API and the run list on stores of 1,000,000 and 10,000,000 llm calls.

For each scale, a fresh chDB store is filled by :func:`benchmarks.fill.fill` (runs of five
steps, two llm calls per attempt, one step in ten retried, verdicts for nine runs in ten),
closed, and served by ``agentledger serve`` in a subprocess on loopback. Then each query is
asked over HTTP, as a client of the API would:

- ``GET /api/v1/metrics`` without grouping, with ``group_by=tier``, with
  ``group_by=step&group_by=tier``, and with a ``workflow`` filter;
- ``GET /api/v1/runs``, the first page (50 runs).

The metrics read per-run rollups that the collector brings up to date before answering, so
the first query after a bulk fill pays the catch-up over every stored span: its time is
reported on its own as "rollup catch-up". Each query is then asked once more (its first
call, in the notes) and timed over :data:`REPEATS` further calls; the figure is the median.
The target, a median of at most 300 ms, is stated at 10,000,000 llm calls.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from agentledger.collector.store import Store
from benchmarks.fill import fill
from benchmarks.servers import agentledger_command, free_port, server

SCALES = {False: (1_000_000, 10_000_000), True: (100_000,)}
#: The scale at which the target applies.
TARGET_CALLS = 10_000_000
TARGET_MS = 300.0
REPEATS = 10
#: (label, path, query parameters); the first is the one that pays the rollup catch-up.
QUERIES: tuple[tuple[str, str, list[tuple[str, str]]], ...] = (
    ("metrics, no grouping", "/api/v1/metrics", []),
    ("metrics by tier", "/api/v1/metrics", [("group_by", "tier")]),
    ("metrics by step and tier", "/api/v1/metrics", [("group_by", "step"), ("group_by", "tier")]),
    ("metrics of one workflow", "/api/v1/metrics", [("workflow", "support")]),
    ("run list, first page", "/api/v1/runs", []),
)
#: Long enough for the catch-up over 10,000,000 calls on a slow machine.
QUERY_TIMEOUT_SECONDS = 3_600.0


def timed_get(client: httpx.Client, url: str, params: list[tuple[str, str]]) -> float:
    """Seconds for one GET answered with 200, the body read."""
    started = time.perf_counter()
    answer = client.get(url, params=params)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"GET {answer.url} answered {answer.status_code}: {answer.text[:300]}")
    return elapsed


def rollup_sizes(client: httpx.Client, base: str) -> str:
    """Rows of each rollup table, from ClickHouse's own table list, as text for a note.

    What the metrics queries read, so that their times can be judged against it.
    """
    sql = (
        "SELECT name, total_rows FROM system.tables WHERE database = currentDatabase() "
        "AND name LIKE '%rollup%' ORDER BY name"
    )
    answer = client.post(f"{base}/api/v1/sql", json={"sql": sql})
    if answer.status_code != 200:
        return f"unknown ({answer.status_code}: {answer.text[:200]})"
    rows = answer.json()["rows"]
    return ", ".join(f"{name} {int(total or 0):,}" for name, total in rows) or "no rollup tables"


def prepare(directory: Path, calls: int) -> tuple[int, int, float]:
    """Fill a store at ``directory``; return llm calls stored, runs, seconds to fill."""
    store = Store(str(directory))
    try:
        store.migrate()
        started = time.perf_counter()
        runs = fill(store, calls)
        seconds = time.perf_counter() - started
        stored = int(store.query("SELECT count() FROM spans WHERE kind = 'llm'")[0][0])
    finally:
        # chDB lets one process hold a directory: release it for the server.
        store.close()
    return stored, runs, seconds


def measure(directory: Path, calls: int) -> list[dict[str, Any]]:
    """Fill a store of ``calls`` llm calls, serve it, time each query; the rows of one scale."""
    store_dir = directory / "store"
    stored, runs, fill_seconds = prepare(store_dir, calls)
    scale = _scale(calls)
    print(f"[queries] {stored:,} llm calls in {runs:,} runs filled in {fill_seconds:.1f} s")

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "AGENTLEDGER_EVALUATE_ALERTS": "false"}
    command = agentledger_command(port, store_dir)
    rows = []
    with (
        server("agentledger", command, env, f"{base}/healthz", directory / "serve.log"),
        httpx.Client(timeout=QUERY_TIMEOUT_SECONDS) as client,
    ):
        label, path, params = QUERIES[0]
        catch_up = timed_get(client, base + path, params)
        print(f"[queries] rollup catch-up (first {label}) {catch_up:.1f} s", flush=True)
        rollups = rollup_sizes(client, base)
        rows.append(
            {
                "name": f"queries: rollup catch-up, {scale}",
                "measures": "first metrics query after a bulk fill: brings the per-run rollups "
                "up to date with every stored span, then answers",
                "value": catch_up,
                "unit": "s",
                "target": "",
                "met": None,
                "note": f"{stored:,} llm calls in {runs:,} runs, filled in ClickHouse in "
                f"{fill_seconds:.1f} s; the server had just started on the filled store. "
                f"Rows in the rollup tables after it: {rollups}.",
            }
        )
        for label, path, params in QUERIES:
            first = timed_get(client, base + path, params)
            times = [timed_get(client, base + path, params) for _ in range(REPEATS)]
            median_ms = statistics.median(times) * 1000
            print(f"[queries] {label}: median {median_ms:.0f} ms", flush=True)
            has_target = path.endswith("/metrics") and calls == TARGET_CALLS
            rows.append(
                {
                    "name": f"queries: {label}, {scale}",
                    "measures": f"GET {path}{_query_string(params)}: median of {REPEATS} "
                    f"answers at {scale} llm calls",
                    "value": median_ms,
                    "unit": "ms",
                    "target": f"<= {TARGET_MS:.0f} ms" if has_target else "",
                    "met": median_ms <= TARGET_MS if has_target else None,
                    "note": f"first call {first * 1000:.0f} ms; fastest "
                    f"{min(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms."
                    + _miss_note(median_ms, has_target),
                }
            )
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    """Every scale in turn, each on a store of its own, removed afterwards."""
    rows: list[dict[str, Any]] = []
    for calls in SCALES[quick]:
        directory = Path(tempfile.mkdtemp(prefix="agentledger-bench-queries-"))
        try:
            rows.extend(measure(directory, calls))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    if quick:
        rows[-1]["note"] += f" Quick run: the target applies at {_scale(TARGET_CALLS)} calls."
    return rows


def _scale(calls: int) -> str:
    if calls % 1_000_000 == 0:
        return f"{calls // 1_000_000}M"
    return f"{calls / 1000:g}k"


def _query_string(params: list[tuple[str, str]]) -> str:
    return "?" + "&".join(f"{key}={value}" for key, value in params) if params else ""


def _miss_note(median_ms: float, has_target: bool) -> str:
    if not has_target or median_ms <= TARGET_MS:
        return ""
    return (
        f" Over the target by {median_ms - TARGET_MS:.0f} ms ({median_ms / TARGET_MS:.1f}x): "
        "one ClickHouse query over the rollup tables, whose sizes are in the catch-up row's "
        "note, on 2 cores."
    )
