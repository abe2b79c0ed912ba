"""The read side: metrics, run lists and run details, answered from the rollups.

Every figure is defined in ``docs/metrics.md``. The resolution of each run (which spans
count, which attempt was used, the verdict) happens once per run in ``rollups.py``; here
each public call adds up rollup rows in one query, and Python only divides the sums of each
group, so that an undefined ratio becomes ``None`` and money stays ``Decimal`` from the
store to the caller. Every call first brings the rollups up to date, so that what was
stored is what it reads. User values are always bound as ``{name:Type}`` parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from agentledger.collector.analysis import AnalysisQueries
from agentledger.collector.rollups import rollups_of
from agentledger.collector.store import Store
from agentledger.schemas.api import (
    Attempt,
    BudgetQuery,
    BudgetReport,
    Call,
    GroupKey,
    MetricsQuery,
    MetricsRow,
    RunDetail,
    RunPage,
    RunsQuery,
    RunSummary,
)

logger = logging.getLogger(__name__)

_TIME = "DateTime64(9, 'UTC')"

# The figures a metrics row is formed from, as sums: over metric_cells (whole days) and over
# group_rollup rows (runs of a partly covered day), which are one row per run and group, so
# that runs and attempts add up. {u} picks the figures that leave out runs and attempts
# without usage in the group, for a grouping by model (see 004_rollups.sql).
_MEASURES = (
    "runs",
    "known_runs",
    "correct_runs",
    "attempts",
    "calls",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reingested_tokens",
    "reingest_base_tokens",
    "accepted_tokens",
    "priced_cost",
    "accepted_cost",
    "priced_rows",
    "unpriced_calls",
    "judged_cost",
    "judged_priced_rows",
    "judged_unpriced_calls",
)
# Figures that a grouping by model takes from their ``*_usage`` columns.
_USAGE_SPLIT = frozenset({"runs", "known_runs", "correct_runs", "attempts"})
_CELL_MEASURES: dict[bool, str] = {
    usage_only: ", ".join(
        f"{name}_usage AS {name}" if usage_only and name in _USAGE_SPLIT else name
        for name in _MEASURES
    )
    for usage_only in (False, True)
}
_ROW_MEASURES: dict[bool, str] = {
    usage_only: ", ".join(
        [
            f"{counted} AS runs",
            f"{counted} * (verdict != '') AS known_runs",
            f"{counted} * (verdict = 'correct') AS correct_runs",
            "attempts_usage AS attempts"
            if usage_only
            else "attempts_usage + attempts_marker AS attempts",
            *_MEASURES[4:16],
            "if(verdict != '', priced_cost, 0) AS judged_cost",
            "if(verdict != '', priced_rows, 0) AS judged_priced_rows",
            "if(verdict != '', unpriced_calls, 0) AS judged_unpriced_calls",
        ]
    )
    for usage_only, counted in ((False, "1"), (True, "has_usage"))
}
_SUMS = ",\n    ".join(f"sum(m.{name}) AS {name}" for name in _MEASURES)
_GRAIN_BITS: dict[str, int] = {"step": 1, "tier": 2, "model": 4}

_GROUP_COLUMNS: dict[GroupKey, str] = {
    "workflow": "workflow",
    "step": "step",
    "tier": "tier",
    "model": "model",
    "day": "toString(day)",
}

_SUMMARY_COLUMNS = """
    run_id, workflow, start_time, end_time, verdict, calls, input_tokens, output_tokens,
    priced_cost, priced_rows, unpriced_calls, budget_tokens, budget_usd"""


class StoreReader(AnalysisQueries):
    """The ``LedgerReader`` over a ``Store``: what the API and the dashboard read."""

    def __init__(self, store: Store, *, tier_map: Mapping[str, str] | None = None) -> None:
        self._store = store
        # The tiers of the collector's tier map: a grouping by tier shows each of them, also
        # one without data in the window, so that "nothing ran on small" is visible.
        self._tiers = sorted(set((tier_map or {}).values()))

    # --- metrics ---------------------------------------------------------------------------

    def metrics(self, query: MetricsQuery) -> list[MetricsRow]:
        """The metrics of each group of ``query.group_by`` (one total row without groups).

        Whole UTC days of the window are read from ``metric_cells``, the runs of a day that
        the window covers in part from ``group_rollup``; both are added up by group.
        """
        self.refresh()
        keys = list(dict.fromkeys(query.group_by))
        filtered = {"model": query.model, "tier": query.tier}
        grain = sum(
            bit for dim, bit in _GRAIN_BITS.items() if dim in keys or filtered.get(dim) is not None
        )
        # A grouping by model leaves out attempts without calls: they have no model.
        usage_only = "model" in keys
        params: dict[str, Any] = {"project": query.project, "grain": grain}
        where = ["project = {project:String}", "grain = {grain:UInt8}"]
        if query.workflow is not None:
            where.append("workflow = {workflow:String}")
            params["workflow"] = query.workflow
        for dim, value in filtered.items():
            if value is not None:
                where.append(f"{dim} = {{{dim}:String}}")
                params[dim] = value
        whole, edge_days = _split_window(query.since, query.until)
        selected = [f"{_GROUP_COLUMNS[k]} AS g_{k}" for k in keys]
        heads = ", ".join([*selected, ""])

        parts = []
        if whole is not None:
            first, last = whole
            cell_where = list(where)
            if first is not None:
                cell_where.append("day >= {first_day:Date}")
                params["first_day"] = first
            if last is not None:
                cell_where.append("day < {end_day:Date}")
                params["end_day"] = last
            if usage_only:
                cell_where.append("runs_usage > 0")
            parts.append(
                f"SELECT {heads}{_CELL_MEASURES[usage_only]} FROM metric_cells FINAL"
                f" WHERE {' AND '.join(cell_where)}"
            )
        if edge_days:
            params["edge_days"] = edge_days
            row_where = [*where, "day IN (SELECT arrayJoin({edge_days:Array(Date)}))"]
            row_where.append(_run_window(None, query.since, query.until, params, start="run_start"))
            if usage_only:
                row_where.append("has_usage = 1")
            parts.append(
                f"SELECT {heads}{_ROW_MEASURES[usage_only]} FROM group_rollup FINAL"
                f" WHERE {' AND '.join(row_where)}"
            )
        group_sql = ", ".join(f"g_{k}" for k in keys)
        outer = ", ".join([*(f"m.g_{k} AS g_{k}" for k in keys), ""])
        sql = (
            f"SELECT {outer}{_SUMS}\nFROM (\n"
            + "\nUNION ALL\n".join(
                parts or [f"SELECT {heads}{_CELL_MEASURES[False]} FROM metric_cells WHERE 0"]
            )
            + "\n) AS m"
            + (f"\nGROUP BY {group_sql}\nORDER BY {group_sql}" if keys else "")
        )
        rows = self._store.query_dicts(sql, params)
        result = [_metrics_row(keys, row) for row in rows]
        if keys == ["tier"] and self._tiers:
            result = _with_idle_tiers(result, self._tiers, query.tier)
        return result

    # --- runs ------------------------------------------------------------------------------

    def runs(self, query: RunsQuery) -> RunPage:
        """A page of runs, newest first, with their totals and verdicts."""
        self.refresh()
        params: dict[str, Any] = {"project": query.project}
        where = _run_window(query.workflow, query.since, query.until, params)
        total_sql = (
            f"SELECT count() FROM run_rollup FINAL WHERE project = {{project:String}} AND {where}"
        )
        total = int(self._store.query(total_sql, params)[0][0])

        params["limit"] = query.limit
        params["offset"] = query.offset
        rows = self._store.query_dicts(
            f"SELECT {_SUMMARY_COLUMNS} FROM run_rollup FINAL"
            f" WHERE project = {{project:String}} AND {where}"
            " ORDER BY start_time DESC, run_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
            params,
        )
        summaries = [_summary(row) for row in rows]
        return RunPage(total=total, limit=query.limit, offset=query.offset, runs=summaries)

    def run(self, run_id: str, project: str = "default") -> RunDetail | None:
        """One run with its attempts and calls, or None when the project has no such run."""
        self.refresh()
        params: dict[str, Any] = {"project": project, "run_id": run_id}
        of_run = "WHERE project = {project:String} AND run_id = {run_id:String}"
        found = self._store.query_dicts(
            f"SELECT {_SUMMARY_COLUMNS} FROM run_rollup FINAL {of_run}", params
        )
        if not found:
            return None
        summary = _summary(found[0])
        attempt_rows = self._store.query_dicts(
            f"SELECT * FROM attempt_rollup FINAL {of_run} ORDER BY start_time, attempt_key",
            params,
        )
        call_rows = self._store.query_dicts(
            f"SELECT * FROM usage_rollup FINAL {of_run} ORDER BY start_time, span_id", params
        )

        calls_by_attempt: dict[str, list[Call]] = {row["attempt_key"]: [] for row in attempt_rows}
        outside: list[Call] = []
        for row in call_rows:
            calls_by_attempt.get(row["attempt_key"], outside).append(_call(row))
        attempts = [
            Attempt(
                span_id=row["span_id"],
                step_name=row["step"],
                step_id=row["step_id"],
                attempt=int(row["attempt"]),
                accepted=bool(row["accepted"]),
                tier=row["tier"],
                start_time=_utc(row["start_time"]),
                end_time=_utc(row["end_time"]),
                calls=calls_by_attempt[row["attempt_key"]],
            )
            for row in attempt_rows
        ]
        return RunDetail(**summary.model_dump(), attempts=attempts, calls_outside_steps=outside)

    def workflows(self, project: str = "default") -> list[str]:
        """Every workflow of a run in the project, sorted."""
        self.refresh()
        rows = self._store.query(
            "SELECT DISTINCT workflow FROM run_rollup FINAL"
            " WHERE project = {project:String} AND workflow != '' ORDER BY workflow",
            {"project": project},
        )
        return [str(row[0]) for row in rows]

    def budgets(self, query: BudgetQuery) -> BudgetReport:
        """Budget breaches, budget use by workflow and alert states (``docs/budgets.md``)."""
        # Imported here: budget_queries builds on this module's helpers.
        from agentledger.collector.budget_queries import budget_report

        self.refresh()
        return budget_report(self._store, query)

    def refresh(self) -> None:
        """Bring the rollups up to date with everything stored (see ``rollups.py``)."""
        rollups_of(self._store).catch_up()


def _summary(row: dict[str, Any]) -> RunSummary:
    return RunSummary(
        run_id=row["run_id"],
        workflow=row["workflow"],
        start_time=_utc(row["start_time"]),
        end_time=_utc(row["end_time"]),
        outcome=row["verdict"] or None,
        calls=row["calls"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cost_usd=_known_cost(row["priced_cost"], row["priced_rows"], row["unpriced_calls"]),
        cost_complete=row["unpriced_calls"] == 0,
        budget_tokens=row["budget_tokens"],
        budget_usd=row["budget_usd"],
    )


def _run_window(
    workflow: str | None,
    since: datetime | None,
    until: datetime | None,
    params: dict[str, Any],
    *,
    start: str = "start_time",
) -> str:
    """The condition on a rollup for a workflow and a window of run starts (column ``start``)."""
    where = ["1"]
    if workflow is not None:
        where.append("workflow = {workflow:String}")
        params["workflow"] = workflow
    if since is not None:
        where.append(f"{start} >= {{since:{_TIME}}}")
        params["since"] = _as_utc(since)
    if until is not None:
        where.append(f"{start} < {{until:{_TIME}}}")
        params["until"] = _as_utc(until)
    return " AND ".join(where)


def _split_window(
    since: datetime | None, until: datetime | None
) -> tuple[tuple[date | None, date | None] | None, list[date]]:
    """The whole UTC days of ``[since, until)`` as ``(first, end)`` (None: unbounded; the
    whole part None when empty), and the days it covers only in part."""
    since = _as_utc(since) if since is not None else None
    until = _as_utc(until) if until is not None else None
    edges: list[date] = []
    first = end = None
    if since is not None:
        first = since.date()
        if since != _midnight(since):
            edges.append(first)
            first += timedelta(days=1)
    if until is not None:
        end = until.date()
        if until != _midnight(until) and end not in edges:
            edges.append(end)
    if since is not None and until is not None:
        if until <= since:
            return None, []
        if first is not None and end is not None and first >= end:
            return None, edges
    return (first, end), edges


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _metrics_row(keys: Sequence[GroupKey], row: dict[str, Any]) -> MetricsRow:
    runs, known, correct = row["runs"], row["known_runs"], row["correct_runs"]
    unpriced = row["unpriced_calls"]
    judged_cost = _known_cost(
        row["judged_cost"], row["judged_priced_rows"], row["judged_unpriced_calls"]
    )
    groups = {key: str(row[f"g_{key}"]) for key in keys}
    return MetricsRow(
        **groups,
        runs=runs,
        known_runs=known,
        correct_runs=correct,
        calls=row["calls"],
        attempts=row["attempts"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cached_tokens=row["cached_tokens"],
        cache_write_tokens=row["cache_write_tokens"],
        reingested_tokens=row["reingested_tokens"],
        cost_usd=_known_cost(row["priced_cost"], row["priced_rows"], unpriced),
        unpriced_calls=unpriced,
        cost_complete=unpriced == 0,
        cost_per_correct_outcome_usd=(
            # Rounded to the store's precision: a quotient has no more exact digits than that.
            (judged_cost / correct).quantize(_USD_QUANTUM)
            if correct and judged_cost is not None
            else None
        ),
        outcome_coverage=known / runs if runs else None,
        success_rate=correct / known if known else None,
        reingestion_overhead=_ratio(row["reingested_tokens"], row["reingest_base_tokens"]),
        retry_amplification=_ratio(
            row["input_tokens"] + row["output_tokens"], row["accepted_tokens"]
        ),
        cost_retry_amplification=_ratio(row["priced_cost"], row["accepted_cost"]),
    )


def _with_idle_tiers(
    rows: list[MetricsRow], tiers: Sequence[str], only: str | None
) -> list[MetricsRow]:
    """Rows by tier plus an empty row for each mapped tier that has none (counts 0, rates null)."""
    seen = {row.tier for row in rows}
    idle = [
        MetricsRow(
            tier=tier,
            runs=0,
            known_runs=0,
            correct_runs=0,
            calls=0,
            attempts=0,
            input_tokens=0,
            output_tokens=0,
            cached_tokens=0,
            cache_write_tokens=0,
            reingested_tokens=0,
            cost_usd=Decimal(0),
            unpriced_calls=0,
            cost_complete=True,
            cost_per_correct_outcome_usd=None,
            outcome_coverage=None,
            success_rate=None,
            reingestion_overhead=None,
            retry_amplification=None,
            cost_retry_amplification=None,
        )
        for tier in tiers
        if tier not in seen and (only is None or tier == only)
    ]
    if not idle:
        return rows
    return sorted([*rows, *idle], key=lambda row: row.tier or "")


_USD_QUANTUM = Decimal("1e-12")


def _known_cost(priced_cost: Decimal, priced_rows: int, unpriced_calls: int) -> Decimal | None:
    """The sum of known costs; None when there are unpriced calls and nothing was priced."""
    if priced_rows == 0 and unpriced_calls > 0:
        return None
    return Decimal(priced_cost)


def _ratio(numerator: int | Decimal, denominator: int | Decimal) -> float | None:
    if not denominator:
        return None
    return float(Decimal(numerator) / Decimal(denominator))


def _utc(value: datetime) -> datetime:
    """ClickHouse returns naive datetimes for UTC columns; make them aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _as_utc(value: datetime) -> datetime:
    """A naive datetime is read as UTC; an aware one is converted to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _call(row: dict[str, Any]) -> Call:
    return Call(
        span_id=row["span_id"],
        kind=row["kind"],
        name=row["name"],
        model=row["model"],
        tool_name=row["tool_name"],
        start_time=_utc(row["start_time"]),
        end_time=_utc(row["end_time"]),
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cached_tokens=row["cache_read_tokens"],
        cache_write_tokens=row["cache_write_tokens"],
        reasoning_tokens=row["reasoning_tokens"],
        reingested_tokens=row["reingested_tokens"],
        cost_usd=row["cost_usd"],
        cost_source=row["cost_source"],
        error_type=row["error_type"],
    )
