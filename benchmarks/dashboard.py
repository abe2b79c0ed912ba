"""Time every dashboard page's callbacks on a store holding about 1,000,000 llm calls.

    .venv/bin/python benchmarks/dashboard.py [--store DIR] [--calls N] [--reuse]

The store is filled in ClickHouse itself (INSERT ... SELECT from ``numbers()``), so that
filling takes seconds rather than an OTLP replay: runs of five steps with two model calls
per attempt, one step in ten retried, routing axes, re-ingested and predicted tokens, and
verdicts for nine runs in ten. Then each page's callback functions run once against a
``StoreReader``, as the collector would call them, and the seconds of each are printed.
The goal of issue 5 is under one second each on a 2-core machine. Not part of the tests.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from agentledger.collector.queries import StoreReader
from agentledger.collector.store import Store
from agentledger.dashboard import app as dash_app
from agentledger.dashboard import overview, pages, run_detail
from agentledger.dashboard.filters import parse_search

STEPS = 5
CALLS_PER_ATTEMPT = 2
PREFIX = "/dashboard/"

# Per step index: name, tier, model, price per 1k tokens (USD), routing axes.
_STEP_SQL = """
    ['intake', 'plan', 'retrieve', 'draft', 'review'][s + 1] AS step,
    ['small', 'frontier', 'small', 'mid', 'frontier'][s + 1] AS tier_name,
    ['gpt-4o-mini', 'claude-sonnet-4-5', 'gpt-4o-mini', 'gpt-4.1-mini', 'gpt-4.1'][s + 1]
        AS model_name,
    ['low', 'high', 'low', 'medium', 'high'][s + 1] AS complexity,
    ['internal', 'internal', 'internal', 'external', 'external'][s + 1] AS sensitivity,
    ['short', 'medium', 'long', 'medium', 'long'][s + 1] AS context_len"""


def fill(store: Store, calls: int) -> int:
    """Insert runs, step attempts, calls and verdicts; return the number of runs."""
    # One step in ten has a second attempt: about 1.1 attempts per step.
    runs = max(1, round(calls / (STEPS * CALLS_PER_ATTEMPT * 1.1)))
    base = "toDateTime64('2026-11-01 00:00:00', 9, 'UTC')"
    spread = 30 * 86_400 / runs
    common = f"""
    'default' AS project,
    leftPad(lower(hex(r)), 32, '0') AS trace_id,
    concat('bench-', toString(r)) AS run_id,
    ['support', 'triage', 'procurement', 'digest'][r % 4 + 1] AS workflow,
    {base} + toIntervalMillisecond(toUInt64(r * {spread} * 1000)) AS run_start"""
    store.command(
        f"""
INSERT INTO spans (project, trace_id, span_id, kind, name, start_time, end_time, run_id,
                   workflow, budget_tokens, counts_usage)
SELECT project, trace_id, leftPad(lower(hex(r)), 16, '0'), 'run', 'run', run_start,
       run_start + toIntervalSecond(60), run_id, workflow, 200000, 0
FROM (SELECT number AS r, {common} FROM numbers({runs}))"""
    )
    attempts = f"""
SELECT *, {_STEP_SQL},
       leftPad(lower(hex(r * 100 + s * 10 + a)), 16, '0') AS step_span,
       run_start + toIntervalSecond(s * 10 + a * 4) AS step_start
FROM (
    SELECT number AS r, {common}, s, a
    FROM numbers({runs})
    ARRAY JOIN range({STEPS}) AS s
    ARRAY JOIN range(1, if((number * 7 + s) % 10 = 0, 3, 2)) AS a
)"""
    store.command(
        f"""
INSERT INTO spans (project, trace_id, span_id, kind, name, start_time, end_time, run_id,
                   workflow, step_name, step_id, tier, attempt, counts_usage)
SELECT project, trace_id, step_span, 'step', step, step_start,
       step_start + toIntervalSecond(3), run_id, workflow, step,
       concat(run_id, '-', toString(s)), tier_name, a, 0
FROM ({attempts})"""
    )
    store.command(
        f"""
INSERT INTO spans (project, trace_id, span_id, parent_span_id, kind, name, start_time,
                   end_time, run_id, workflow, step_name, step_id, tier, attempt,
                   task_complexity, task_sensitivity, task_context, operation, request_model,
                   model, counts_usage, input_tokens, output_tokens, cache_read_tokens,
                   reingested_tokens, predicted_tokens, cost_usd, cost_source)
SELECT project, trace_id, leftPad(lower(hex(r * 1000 + s * 100 + a * 10 + c)), 16, '0'),
       step_span, 'llm', 'chat', step_start + toIntervalMillisecond(c * 900),
       step_start + toIntervalMillisecond(c * 900 + 800), run_id, workflow, step,
       concat(run_id, '-', toString(s)), tier_name, a, complexity, sensitivity, context_len,
       'chat', model_name, model_name, 1,
       input, output, intDiv(input, 3), reingested, if(c = 0, input + output + 200, NULL),
       toDecimal64((input + output * 4) * 0.000001, 12), 'reported'
FROM (
    SELECT *, c,
           2000 * (s + 1) + (cityHash64(r, s, c) % 1500) AS input,
           150 + (cityHash64(c, s, r) % 400) AS output,
           2000 * s AS reingested
    FROM ({attempts})
    ARRAY JOIN range({CALLS_PER_ATTEMPT}) AS c
)"""
    )
    store.command(
        f"""
INSERT INTO outcomes (project, run_id, outcome, source, decided_at, outcome_key)
SELECT 'default', concat('bench-', toString(number)),
       if(cityHash64(number) % 100 < 80, 'correct', 'incorrect'), 'bench',
       {base} + toIntervalDay(31), concat('bench:', toString(number))
FROM numbers({runs}) WHERE number % 10 != 0"""
    )
    return runs


def timed(label: str, call: Callable[[], Any], results: list[tuple[str, float]]) -> None:
    start = time.perf_counter()
    call()
    elapsed = time.perf_counter() - start
    results.append((label, elapsed))
    print(f"{elapsed:8.2f} s  {label}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="chDB directory (default: a temporary one)")
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="time an already filled store")
    parser.add_argument("--search", default="", help="page filters, e.g. '?workflow=support'")
    args = parser.parse_args(argv)

    directory = args.store or tempfile.mkdtemp(prefix="agentledger-bench-")
    store = Store(directory)
    store.migrate()
    try:
        if not args.reuse:
            start = time.perf_counter()
            runs = fill(store, args.calls)
            print(f"filled {directory}: {runs:,} runs in {time.perf_counter() - start:.1f} s")
        count = store.query("SELECT count() FROM spans WHERE kind = 'llm'")[0][0]
        print(f"{count:,} llm calls in the store\n")

        reader = StoreReader(store)
        filters = parse_search(args.search).filters
        window = filters.window()
        results: list[tuple[str, float]] = []
        timed(
            "router: render_page + choices",
            lambda: (
                dash_app.render_page(reader, PREFIX, PREFIX, args.search),
                dash_app.dimension_options(reader, args.search),
            ),
            results,
        )
        timed("overview: headline cards", lambda: overview.kpi_section(reader, window), results)
        timed(
            "overview: steps × tiers", lambda: overview.step_tier_section(reader, window), results
        )
        timed("overview: over time", lambda: overview.trend_figure(reader, window), results)
        timed("overview: run list", lambda: overview.runs_section(reader, filters, PREFIX), results)
        for segment in pages.BODIES:
            timed(
                f"{segment}: page body",
                lambda segment=segment: pages.render_body(reader, PREFIX, segment, args.search),
                results,
            )
        timed("run page", lambda: run_detail.run_page(reader, "bench-7", PREFIX, filters), results)
        slow = [label for label, seconds in results if seconds >= 1.0]
        print(f"\n{len(results) - len(slow)} of {len(results)} callbacks under one second")
        if slow:
            print("over one second: " + ", ".join(slow))
    finally:
        store.close()
        if not args.store:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
