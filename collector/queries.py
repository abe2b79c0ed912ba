"""The read side: metrics, run lists and run details, computed in ClickHouse.

Every figure is defined in ``docs/metrics.md``; this module is its implementation. Each
public call runs one or two set-based queries whose aggregation happens in ClickHouse;
Python only divides the sums of each group, so that an undefined ratio becomes ``None``
and money stays ``Decimal`` from the store to the caller.

Every read goes through ``FINAL``, so a span or verdict delivered twice counts once before
ClickHouse merges its parts. User values are always bound as ``{name:Type}`` parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from agentledger.collector.analysis import AnalysisQueries
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

# One row per run of the project: identity from run_id on any of its spans (the run span may
# never have arrived), start = earliest span, workflow = the run span's, else any span's.
# Outcome spans arrive after the run, so they neither create a run nor move its start.
_RUN_INFO = """
run_info AS (
    SELECT
        run_id,
        min(start_time) AS run_start,
        max(end_time) AS run_end,
        if(countIf(kind = 'run' AND workflow != '') > 0,
           anyIf(workflow, kind = 'run' AND workflow != ''),
           anyIf(workflow, workflow != '')) AS run_workflow
    FROM spans FINAL
    WHERE project = {project:String} AND run_id != '' AND kind != 'outcome'
    GROUP BY run_id
)"""

# The runs of a window and workflow, with the day of their start.
_WIN = """
win AS (
    SELECT run_id, run_workflow, toString(toDate(run_start, 'UTC')) AS run_day
    FROM run_info WHERE {run_where}
)"""

# The verdict of a run: the latest by its own timestamp, ties broken by the later arrival.
_VERDICT = """
verdict AS (
    SELECT run_id, argMax(outcome, (decided_at, ingested_at)) AS verdict
    FROM outcomes FINAL
    WHERE project = {project:String} AND outcome IN ('correct', 'incorrect')
    GROUP BY run_id
)"""

# Usage spans and step spans of the runs of {scope}, one row each. The usage spans are those
# whose usage and cost count: a foreign span (kind '') that is the parent of another span
# carrying usage in the same trace is a roll-up. Ingest marks the ones it can see in one
# request; the check below catches those whose children came in another. Its candidate set is
# limited to traces that hold counting foreign spans, so it costs nothing without them.
#
# anchor ties a step span to the calls of its attempt: (step_id, attempt) when the span has
# a step_id, else the step span's own id, which its calls name as their parent.
_BASE = """
base AS (
    SELECT
        run_id, kind, kind = 'step' AS is_step,
        kind = 'tool' OR operation = 'execute_tool' AS is_tool,
        trace_id, CAST(span_id AS String) AS sid, parent_span_id, name,
        step_name, step_id, tier, coalesce(attempt, 1) AS attempt_n, attempt_accepted,
        model, tool_name, error_type, start_time, end_time,
        if(step_id != '',
           concat('i', step_id, '#', toString(coalesce(attempt, 1))),
           concat('s', if(kind = 'step', CAST(span_id AS String), parent_span_id))) AS anchor,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        reingested_tokens, cost_usd, cost_source,
        NOT is_step AND NOT is_tool AND cost_usd IS NULL
            AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL OR model != '')
            AS is_unpriced
    FROM spans FINAL
    WHERE project = {project:String} AND ({scope})
      AND (kind = 'step' OR (counts_usage AND kind IN ('llm', 'tool', '')))
      AND NOT (kind = '' AND (trace_id, CAST(span_id AS String)) IN (
          SELECT trace_id, parent_span_id
          FROM spans
          WHERE project = {project:String} AND parent_span_id != ''
            AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL
                 OR cost_usd IS NOT NULL)
            AND trace_id IN (
                SELECT trace_id FROM spans
                WHERE project = {project:String} AND kind = '' AND counts_usage)))
),
alias AS (
    -- A call without step_id whose parent step span has one joins that span's attempt.
    SELECT run_id, concat('s', sid) AS source, anchor AS target
    FROM base
    WHERE is_step AND step_id != '' AND (trace_id, sid) IN (
        SELECT trace_id, parent_span_id FROM base WHERE NOT is_step AND step_id = '')
)"""

# Usage summed per attempt anchor and call attributes (a few rows per attempt), then re-keyed
# through alias. Everything after this works on these sums, not on single spans.
# TODO: this per-attempt aggregation runs at query time over every span of the window, about
# 20 s per million calls on a busy 2-core machine; the 10M-call target needs it kept up to
# date at ingest (issue 8), with only acceptance and verdicts resolved at query time.
_GROUPED = """
grouped AS (
    SELECT
        g.*, if(al.target != '', al.target, g.anchor) AS attempt_key
    FROM (
        SELECT
            run_id, anchor, is_step, is_tool, model, tier, step_name,
            anyIf(step_id, step_id != '') AS g_step_id,
            any(attempt_n) AS g_attempt,
            max(attempt_accepted) AS g_flag,
            min(start_time) AS g_start,
            max(end_time) AS g_end,
            min(sid) AS g_sid,
            count() AS n,
            sum(ifNull(input_tokens, 0)) AS g_input,
            sum(ifNull(output_tokens, 0)) AS g_output,
            sum(ifNull(cache_read_tokens, 0)) AS g_cache_read,
            sum(ifNull(cache_write_tokens, 0)) AS g_cache_write,
            sum(ifNull(reingested_tokens, 0)) AS g_reingested,
            sumIf(ifNull(input_tokens, 0), reingested_tokens IS NOT NULL) AS g_reingest_base,
            sumIf(assumeNotNull(cost_usd), cost_usd IS NOT NULL) AS g_cost,
            countIf(cost_usd IS NOT NULL) AS g_priced,
            countIf(is_unpriced) AS g_unpriced
        FROM base
        GROUP BY run_id, anchor, is_step, is_tool, model, tier, step_name
    ) AS g
    LEFT JOIN alias AS al ON al.run_id = g.run_id AND al.source = g.anchor
)"""

# One row per attempt (or per group of calls outside any step), known from its step span or,
# when that never arrived, from the step context copied onto its calls. Attempts without
# step_id pair by step name and attempt number in start-time order: the i-th attempt 2 of
# "plan" in a run belongs with the i-th attempt 1. Accepted: the recorded flag, else whether
# no later attempt of the same instance exists. A call outside any step is accepted.
_ATTEMPTS = """
attempt_info AS (
    SELECT
        run_id, attempt_key,
        countIf(is_step) > 0 AS has_step,
        has_step OR startsWith(attempt_key, 'i') AS in_attempt,
        countIf(NOT is_step) > 0 AS has_usage,
        if(has_step, anyIf(step_name, is_step), any(step_name)) AS a_step,
        if(countIf(is_step AND tier != '') > 0,
           anyIf(tier, is_step AND tier != ''), anyIf(tier, tier != '')) AS a_tier,
        if(has_step, anyIf(g_attempt, is_step), any(g_attempt)) AS a_attempt,
        anyIf(g_step_id, g_step_id != '') AS a_step_id,
        coalesce(maxIf(g_flag, is_step), max(g_flag)) AS a_flag,
        anyIf(g_sid, is_step) AS a_sid,
        min(g_start) AS a_start,
        max(g_end) AS a_end
    FROM grouped
    GROUP BY run_id, attempt_key
),
attempt_instances AS (
    SELECT
        *,
        multiIf(NOT in_attempt, '',
                a_step_id != '', concat('i', a_step_id),
                concat('n', a_step, '#', toString(row_number() OVER (
                    PARTITION BY run_id, in_attempt, a_step_id = '', a_step, a_attempt
                    ORDER BY a_start, attempt_key)))) AS instance
    FROM attempt_info
),
attempts AS (
    SELECT
        *,
        max(a_attempt) OVER (PARTITION BY run_id, instance) AS last_attempt,
        multiIf(NOT in_attempt, 1, a_flag IS NULL, a_attempt = last_attempt, a_flag = 1)
            AS accepted
    FROM attempt_instances
)"""

# The rows a metrics group aggregates: usage sums with their attempt's step, tier and
# acceptance; every attempt without usage (so that a step that ran counts its run and
# attempt); and one marker per run (so that a run with no calls still counts). Markers join
# only the groupings they cannot split wrongly; see _facts(). A call's own tier (copied from
# its attempt, or from the tier map) wins; when empty, its attempt's tier applies.
_USAGE_FACTS = """
    SELECT
        g.run_id AS run_id, 'usage' AS row_kind, g.is_tool AS is_tool,
        a.in_attempt AS in_attempt, g.attempt_key AS attempt_key, a.accepted AS f_accepted,
        if(a.in_attempt, a.a_step, g.step_name) AS f_step,
        if(g.tier != '', g.tier, a.a_tier) AS f_tier,
        g.model AS model, g.n AS n, g.g_input AS input_tokens, g.g_output AS output_tokens,
        g.g_cache_read AS cache_read_tokens, g.g_cache_write AS cache_write_tokens,
        g.g_reingested AS reingested_tokens, g.g_reingest_base AS reingest_base_tokens,
        g.g_cost AS cost_usd, g.g_priced AS priced, g.g_unpriced AS unpriced
    FROM grouped AS g
    INNER JOIN attempts AS a ON a.run_id = g.run_id AND a.attempt_key = g.attempt_key
    WHERE NOT g.is_step"""
_ZEROS = (
    "toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), toUInt64(0), "
    "toUInt64(0), toDecimal128(0, 12), toUInt64(0), toUInt64(0)"
)
_ATTEMPT_FACTS = f"""
    SELECT run_id, 'attempt', 0, 1, attempt_key, accepted, a_step, a_tier, '', {_ZEROS}
    FROM attempts WHERE in_attempt AND NOT has_usage"""
_RUN_FACTS = f"""
    SELECT run_id, 'run', 0, 0, '', 1, '', '', '', {_ZEROS}
    FROM win"""

# Sums per group; the ratios are formed in Python from these so that a zero denominator is
# None, never NaN. A model call is a usage span that is not a tool: tool spans count in
# cost, never in tokens or calls.
_AGGREGATES = """
    uniqExact(f.run_id) AS runs,
    uniqExactIf(f.run_id, v.verdict != '') AS known_runs,
    uniqExactIf(f.run_id, v.verdict = 'correct') AS correct_runs,
    sumIf(f.n, is_call) AS calls,
    uniqExactIf((f.run_id, f.attempt_key), f.in_attempt)
        + sumIf(f.n, is_call AND NOT f.in_attempt) AS attempts,
    sumIf(f.input_tokens, is_call) AS input_tokens,
    sumIf(f.output_tokens, is_call) AS output_tokens,
    sumIf(f.cache_read_tokens, is_call) AS cached_tokens,
    sumIf(f.cache_write_tokens, is_call) AS cache_write_tokens,
    sumIf(f.reingested_tokens, is_call) AS reingested_tokens,
    sumIf(f.reingest_base_tokens, is_call) AS reingest_base_tokens,
    sum(f.cost_usd) AS priced_cost,
    sum(f.priced) AS priced_rows,
    sum(f.unpriced) AS unpriced_calls,
    sumIf(f.cost_usd, v.verdict != '') AS judged_cost,
    sumIf(f.priced, v.verdict != '') AS judged_priced_rows,
    sumIf(f.unpriced, v.verdict != '') AS judged_unpriced_calls,
    sumIf(f.input_tokens + f.output_tokens, is_call) AS tokens_all,
    sumIf(f.input_tokens + f.output_tokens, is_call AND f.f_accepted) AS tokens_accepted,
    sum(f.cost_usd) AS cost_all,
    sumIf(f.cost_usd, f.f_accepted) AS cost_accepted"""

_GROUP_COLUMNS: dict[GroupKey, str] = {
    "workflow": "w.run_workflow",
    "step": "f.f_step",
    "tier": "f.f_tier",
    "model": "f.model",
    "day": "w.run_day",
}


class StoreReader(AnalysisQueries):
    """The ``LedgerReader`` over a ``Store``: what the API and the dashboard read."""

    def __init__(self, store: Store, *, tier_map: Mapping[str, str] | None = None) -> None:
        self._store = store
        # The tiers of the collector's tier map: a grouping by tier shows each of them, also
        # one without data in the window, so that "nothing ran on small" is visible.
        self._tiers = sorted(set((tier_map or {}).values()))

    # --- metrics ---------------------------------------------------------------------------

    def metrics(self, query: MetricsQuery) -> list[MetricsRow]:
        """The metrics of each group of ``query.group_by`` (one total row without groups)."""
        keys = list(dict.fromkeys(query.group_by))
        params: dict[str, Any] = {"project": query.project}
        run_where = _run_window(query.workflow, query.since, query.until, params)
        fact_where = []
        if query.model is not None:
            fact_where.append("f.model = {model:String}")
            params["model"] = query.model
        if query.tier is not None:
            fact_where.append("f.f_tier = {tier:String}")
            params["tier"] = query.tier

        with_runs = not {"step", "tier", "model"} & set(keys) and not fact_where
        windowed = run_where != "1"
        scope = "run_id IN (SELECT run_id FROM win)" if windowed else "1"
        ctes = [
            _RUN_INFO,
            _WIN.replace("{run_where}", run_where),
            _VERDICT,
            _BASE.replace("{scope}", scope),
            _GROUPED,
            _ATTEMPTS,
            f"\nfacts AS ({_facts(keys, with_runs)}\n)",
        ]
        selected = [f"{_GROUP_COLUMNS[k]} AS g_{k}" for k in keys]
        group_sql = ", ".join(f"g_{k}" for k in keys)
        # The run table is joined only when a figure needs it: a run-level filter, the
        # workflow or day of the run, or runs without usage.
        join_runs = windowed or with_runs or bool({"workflow", "day"} & set(keys))
        sql = (
            "WITH"
            + ",".join(ctes)
            + "\nSELECT\n    "
            + ",\n    ".join([*selected, _AGGREGATES.strip()])
            + "\nFROM facts AS f"
            + ("\nINNER JOIN win AS w ON w.run_id = f.run_id" if join_runs else "")
            + "\nLEFT JOIN verdict AS v ON v.run_id = f.run_id"
            + ("\nWHERE " + " AND ".join(fact_where) if fact_where else "")
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
        params: dict[str, Any] = {"project": query.project}
        where = _run_window(query.workflow, query.since, query.until, params)
        total_sql = f"WITH{_RUN_INFO}\nSELECT count() FROM run_info WHERE {where}"
        total = int(self._store.query(total_sql, params)[0][0])

        params["limit"] = query.limit
        params["offset"] = query.offset
        summaries = self._summaries(
            f"SELECT run_id FROM run_info WHERE {where}"
            " ORDER BY run_start DESC, run_id LIMIT {limit:UInt32} OFFSET {offset:UInt32}",
            params,
        )
        return RunPage(total=total, limit=query.limit, offset=query.offset, runs=summaries)

    def run(self, run_id: str, project: str = "default") -> RunDetail | None:
        """One run with its attempts and calls, or None when the project has no such run."""
        params: dict[str, Any] = {"project": project, "run_id": run_id}
        found = self._summaries("SELECT {run_id:String} AS run_id", params)
        if not found:
            return None
        summary = found[0]

        scope = "run_id = {run_id:String}"
        head = "WITH" + _BASE.replace("{scope}", scope)
        attempt_rows = self._store.query_dicts(
            head
            + ","
            + _GROUPED
            + ","
            + _ATTEMPTS
            + "\nSELECT * FROM attempts WHERE in_attempt ORDER BY a_start, attempt_key",
            params,
        )
        call_rows = self._store.query_dicts(
            head
            + """
SELECT b.*, if(al.target != '', al.target, b.anchor) AS attempt_key
FROM base AS b
LEFT JOIN alias AS al ON al.run_id = b.run_id AND al.source = b.anchor
WHERE NOT b.is_step
ORDER BY b.start_time, b.sid""",
            params,
        )

        calls_by_attempt: dict[str, list[Call]] = {row["attempt_key"]: [] for row in attempt_rows}
        outside: list[Call] = []
        for row in call_rows:
            calls_by_attempt.get(row["attempt_key"], outside).append(_call(row))
        attempts = [
            Attempt(
                span_id=row["a_sid"],
                step_name=row["a_step"],
                step_id=row["a_step_id"],
                attempt=int(row["a_attempt"]),
                accepted=bool(row["accepted"]),
                tier=row["a_tier"],
                start_time=_utc(row["a_start"]),
                end_time=_utc(row["a_end"]),
                calls=calls_by_attempt[row["attempt_key"]],
            )
            for row in attempt_rows
        ]
        return RunDetail(**summary.model_dump(), attempts=attempts, calls_outside_steps=outside)

    def workflows(self, project: str = "default") -> list[str]:
        """Every workflow name seen in the project, sorted."""
        # TODO: this lists workflow names on any span rather than resolved run workflows; it
        # only differs when spans of one run disagree on the workflow, and it avoids a pass
        # over every run for a filter list.
        rows = self._store.query(
            "SELECT DISTINCT workflow FROM spans"
            " WHERE project = {project:String} AND workflow != '' ORDER BY workflow",
            {"project": project},
        )
        return [str(row[0]) for row in rows]

    def budgets(self, query: BudgetQuery) -> BudgetReport:
        """Budget breaches, budget use by workflow and alert states (``docs/budgets.md``)."""
        # Imported here: budget_queries builds on this module's query fragments.
        from agentledger.collector.budget_queries import budget_report

        return budget_report(self._store, query)

    # --- helpers ---------------------------------------------------------------------------

    def _summaries(self, selection: str, params: dict[str, Any]) -> list[RunSummary]:
        """Summaries of the runs that ``selection`` (a query over ``run_info``) returns."""
        scope = "run_id IN (SELECT run_id FROM chosen)"
        sql = (
            "WITH"
            + ",".join(
                [
                    _RUN_INFO,
                    f"\nchosen AS ({selection})",
                    _VERDICT,
                    _BASE.replace("{scope}", scope),
                    """
totals AS (
    SELECT
        run_id,
        countIf(NOT is_tool) AS t_calls,
        sumIf(ifNull(input_tokens, 0), NOT is_tool) AS t_input,
        sumIf(ifNull(output_tokens, 0), NOT is_tool) AS t_output,
        sumIf(assumeNotNull(cost_usd), cost_usd IS NOT NULL) AS t_priced_cost,
        countIf(cost_usd IS NOT NULL) AS t_priced_rows,
        countIf(is_unpriced) AS t_unpriced
    FROM base WHERE NOT is_step GROUP BY run_id
)""",
                    """
budget AS (
    SELECT run_id, max(budget_tokens) AS b_tokens, max(budget_usd) AS b_usd
    FROM spans FINAL
    WHERE project = {project:String} AND kind = 'run'
      AND run_id IN (SELECT run_id FROM chosen)
    GROUP BY run_id
)""",
                ]
            )
            + """
SELECT
    r.run_id AS run_id, r.run_workflow AS workflow, r.run_start AS start_time,
    r.run_end AS end_time, v.verdict AS verdict, t.t_calls AS calls,
    t.t_input AS input_tokens, t.t_output AS output_tokens,
    t.t_priced_cost AS priced_cost, t.t_priced_rows AS priced_rows,
    t.t_unpriced AS unpriced_calls, b.b_tokens AS budget_tokens, b.b_usd AS budget_usd
FROM run_info AS r
LEFT JOIN verdict AS v ON v.run_id = r.run_id
LEFT JOIN totals AS t ON t.run_id = r.run_id
LEFT JOIN budget AS b ON b.run_id = r.run_id
WHERE r.run_id IN (SELECT run_id FROM chosen)
ORDER BY r.run_start DESC, r.run_id"""
        )
        return [
            RunSummary(
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
            for row in self._store.query_dicts(sql, params)
        ]


def _run_window(
    workflow: str | None,
    since: datetime | None,
    until: datetime | None,
    params: dict[str, Any],
) -> str:
    """The condition on ``run_info`` for a workflow and a window of run starts."""
    where = ["1"]
    if workflow is not None:
        where.append("run_workflow = {workflow:String}")
        params["workflow"] = workflow
    if since is not None:
        where.append(f"run_start >= {{since:{_TIME}}}")
        params["since"] = _as_utc(since)
    if until is not None:
        where.append(f"run_start < {{until:{_TIME}}}")
        params["until"] = _as_utc(until)
    return " AND ".join(where)


def _facts(keys: Sequence[GroupKey], with_runs: bool) -> str:
    """The fact rows for a grouping.

    Attempt markers carry no model, so they join only groupings without the model key (an
    attempt belongs to a model's group through its calls). Run markers carry no step, tier
    or model, so they join only groupings by workflow and day without a model or tier filter.
    """
    parts = [_USAGE_FACTS]
    if "model" not in keys:
        parts.append(_ATTEMPT_FACTS)
    if with_runs:
        parts.append(_RUN_FACTS)
    head = "\n    SELECT *, row_kind = 'usage' AND NOT is_tool AS is_call\n    FROM ("
    return head + "\n    UNION ALL".join(parts) + "\n    )"


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
        retry_amplification=_ratio(row["tokens_all"], row["tokens_accepted"]),
        cost_retry_amplification=_ratio(row["cost_all"], row["cost_accepted"]),
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
        span_id=row["sid"],
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
