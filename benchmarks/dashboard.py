"""Time every dashboard page's callbacks on a store holding about 1,000,000 llm calls.

    .venv/bin/python -m benchmarks.dashboard [--store DIR] [--calls N] [--reuse]

The store is filled in ClickHouse itself by :func:`benchmarks.fill.fill`, so that filling
takes seconds rather than an OTLP replay. The rollups are then brought up to date once (timed
on its own: the collector does that in the background as spans arrive), and each page's
callback functions run once against a ``StoreReader``, as the collector would call them, and
the seconds of each are printed. The goal of issue 5 is under one second each on a 2-core
machine. ``scripts/bench`` runs it through :func:`run`. Not part of the tests.
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
from benchmarks.fill import fill

PREFIX = "/dashboard/"


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
        start = time.perf_counter()
        reader.refresh()
        print(f"rollups brought up to date in {time.perf_counter() - start:.1f} s\n")
        results = time_callbacks(reader, args.search)
        slow = [label for label, seconds in results if seconds >= 1.0]
        print(f"\n{len(results) - len(slow)} of {len(results)} callbacks under one second")
        if slow:
            print("over one second: " + ", ".join(slow))
    finally:
        store.close()
        if not args.store:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


def time_callbacks(reader: StoreReader, search: str = "") -> list[tuple[str, float]]:
    """Run each page's callbacks once; return (label, seconds) for each."""
    filters = parse_search(search).filters
    window = filters.window()
    results: list[tuple[str, float]] = []
    timed(
        "router: render_page + choices",
        lambda: (
            dash_app.render_page(reader, PREFIX, PREFIX, search),
            dash_app.dimension_options(reader, search),
        ),
        results,
    )
    timed("overview: headline cards", lambda: overview.kpi_section(reader, window), results)
    timed("overview: steps × tiers", lambda: overview.step_tier_section(reader, window), results)
    timed("overview: over time", lambda: overview.trend_figure(reader, window), results)
    timed("overview: run list", lambda: overview.runs_section(reader, filters, PREFIX), results)
    for segment in pages.BODIES:
        timed(
            f"{segment}: page body",
            lambda segment=segment: pages.render_body(reader, PREFIX, segment, search),
            results,
        )
    timed("run page", lambda: run_detail.run_page(reader, "bench-7", PREFIX, filters), results)
    return results


def run(quick: bool) -> list[dict[str, Any]]:
    """The callbacks' seconds as benchmark rows, at 1,000,000 llm calls (quick: 100,000)."""
    calls = 100_000 if quick else 1_000_000
    directory = tempfile.mkdtemp(prefix="agentledger-bench-dashboard-")
    store = Store(directory)
    store.migrate()
    try:
        runs = fill(store, calls)
        reader = StoreReader(store)
        start = time.perf_counter()
        reader.refresh()
        catch_up = time.perf_counter() - start
        results = time_callbacks(reader)
    finally:
        store.close()
        shutil.rmtree(directory, ignore_errors=True)
    scale = f"{calls:,} llm calls in {runs:,} runs"
    rows: list[dict[str, Any]] = [
        {
            "name": f"dashboard: rollup catch-up, {calls // 1000:,}k",
            "measures": "bringing the rollups up to date with a store filled in bulk, once, "
            "before the pages are timed",
            "value": catch_up,
            "unit": "s",
            "target": "",
            "met": None,
            "note": scale,
        }
    ]
    rows += [
        {
            "name": f"dashboard: {label}",
            "measures": "one page's callbacks, run once as the collector runs them",
            "value": seconds,
            "unit": "s",
            "target": "< 1 s" if not quick else "",
            "met": seconds < 1.0 if not quick else None,
            "note": scale,
        }
        for label, seconds in results
    ]
    return rows


if __name__ == "__main__":
    sys.exit(main())
