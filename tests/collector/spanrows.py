"""Rows for the ``spans`` and ``outcomes`` tables, written straight into a test store.

Ids are short labels padded to their fixed width, so that a test reads ``parent="s1"``.
Times are seconds after ``T0`` unless a datetime is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from agentledger.collector.store import Store

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

SPAN_DEFAULTS: dict[str, Any] = {
    "project": "default",
    "trace_id": "t1",
    "span_id": "",
    "parent_span_id": "",
    "kind": "llm",
    "name": "span",
    "start_time": 0.0,
    "end_time": None,
    "status_code": "",
    "service_name": "agent",
    "service_version": "",
    "environment": "",
    "run_id": "r1",
    "run_parent_id": "",
    "workflow": "",
    "conversation_id": "",
    "budget_tokens": None,
    "budget_usd": None,
    "step_name": "",
    "step_id": "",
    "tier": "",
    "attempt": None,
    "attempt_accepted": None,
    "task_complexity": "",
    "task_sensitivity": "",
    "task_context": "",
    "operation": "",
    "provider": "",
    "request_model": "",
    "response_model": "",
    "model": "",
    "tool_name": "",
    "error_type": "",
    "counts_usage": None,
    "input_tokens": None,
    "output_tokens": None,
    "cache_read_tokens": None,
    "cache_write_tokens": None,
    "reasoning_tokens": None,
    "reingested_tokens": None,
    "predicted_tokens": None,
    "cost_usd": None,
    "cost_source": "",
    "outcome": "",
    "outcome_score": None,
    "attributes": {},
    "resource_attributes": {},
}


def _time(value: float | datetime) -> datetime:
    return value if isinstance(value, datetime) else T0 + timedelta(seconds=value)


def span(span_id: str, **columns: Any) -> dict[str, Any]:
    """A ``spans`` row with defaults for every column.

    ``counts_usage`` defaults as ingest sets it: 1 for llm and tool spans and for foreign
    spans carrying usage, 0 for run, step and outcome spans. ``cost_usd`` may be a string.
    """
    unknown = set(columns) - set(SPAN_DEFAULTS)
    if unknown:
        raise KeyError(f"not a spans column: {sorted(unknown)!r}")
    row = {**SPAN_DEFAULTS, **columns, "span_id": span_id}
    row["trace_id"] = row["trace_id"].rjust(32, "0")
    row["span_id"] = row["span_id"].rjust(16, "0")
    if row["parent_span_id"]:
        row["parent_span_id"] = row["parent_span_id"].rjust(16, "0")
    row["start_time"] = _time(row["start_time"])
    row["end_time"] = (
        row["start_time"] + timedelta(seconds=1)
        if row["end_time"] is None
        else _time(row["end_time"])
    )
    if row["cost_usd"] is not None:
        row["cost_usd"] = Decimal(row["cost_usd"])
    if row["counts_usage"] is None:
        carries = (
            row["input_tokens"] is not None
            or row["output_tokens"] is not None
            or row["cost_usd"] is not None
        )
        row["counts_usage"] = row["kind"] in ("llm", "tool") or (row["kind"] == "" and carries)
    return row


def insert_spans(store: Store, *rows: dict[str, Any]) -> None:
    """Insert rows in one insert (one part), as one ingest batch would."""
    columns = list(SPAN_DEFAULTS)
    store.insert("spans", [[row[c] for c in columns] for row in rows], columns)


def insert_outcome(
    store: Store,
    run_id: str,
    outcome: str,
    *,
    project: str = "default",
    decided_at: float | datetime = 100.0,
    key: str | None = None,
    source: str = "api",
) -> None:
    """Insert one verdict, stamped by the store with the time of its arrival.

    The rollups find new rows by that stamp, so a test never backdates it.
    """
    columns = ["project", "run_id", "outcome", "score", "source", "decided_at", "outcome_key"]
    values: list[Any] = [
        project,
        run_id,
        outcome,
        None,
        source,
        _time(decided_at),
        key or f"{source}:{run_id}:{outcome}:{decided_at}",
    ]
    store.insert("outcomes", [values], columns)


def open_store(path: Path) -> Iterator[Store]:
    """A migrated chDB store, closed afterwards: chDB holds one directory per process."""
    store = Store(str(path))
    store.migrate()
    try:
        yield store
    finally:
        store.close()
