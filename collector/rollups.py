"""Rollups: the per-run tables the read side answers from, kept up to date from the spans.

Every figure of ``docs/metrics.md`` starts from the same resolution: which usage spans count,
which attempt of which step each belongs to, whether that attempt's output was used, and the
run's verdict. Done at query time over every span, that costs seconds per million calls.
Here it is done once per run, whenever the run receives a span or a verdict, and the result
is stored in ``usage_rollup``, ``attempt_rollup``, ``run_rollup`` and ``group_rollup``
(``schemas/sql/004_rollups.sql``); queries then add up a few rows per run.

A pass finds the runs touched since the watermark (spans and verdicts by ``ingested_at``),
derives all their rows again in ClickHouse (``INSERT ... SELECT``, nothing goes through
Python), marks the rows of earlier passes that the new one no longer produces as deleted,
and moves the watermark. Deriving a run again is idempotent, so a re-delivered span, a late
step span or a late verdict simply makes its run's rows right. Readers call
:meth:`Rollups.catch_up` before they read, so that what was stored is what they see; it first
waits for the collector's writer to store what it has acknowledged.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from agentledger.collector.store import Store
from agentledger.schemas.cluster import WATERMARK_TABLE

logger = logging.getLogger(__name__)

#: Runs derived per statement: bounds the memory of one pass over a large backlog.
CHUNK_RUNS: Final = 20_000
#: How far back a pass looks again on a ClickHouse server, where inserts of other collectors
#: may still be committing rows stamped a moment before the last pass. chDB serialises every
#: statement of its one process, so it needs none.
SERVER_LAG_SECONDS: Final = 5.0
#: Seconds the background loop rests per second its last pass took, when that is longer
#: than its interval: passes take at most 1 / (1 + 4) of the store's time.
REST_PER_PASS_SECOND: Final = 4.0
_WATERMARK: Final = "rollups"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# The runs of one pass and the traces holding their spans.
_SCOPE = """
chosen AS (SELECT arrayJoin({runs:Array(String)}) AS run_id),
traces AS (
    SELECT trace_id FROM run_traces
    WHERE project = {project:String} AND run_id IN (SELECT run_id FROM chosen)
)"""

# One row per run: identity from run_id on any of its spans (the run span may never have
# arrived), start = earliest span, workflow = the run span's, else any span's, budgets from
# the run span. Outcome spans arrive after the run: they neither create a run nor move it.
_RUN_INFO = """
run_info AS (
    SELECT
        run_id,
        min(start_time) AS run_start,
        max(end_time) AS run_end,
        if(countIf(kind = 'run' AND workflow != '') > 0,
           anyIf(workflow, kind = 'run' AND workflow != ''),
           anyIf(workflow, workflow != '')) AS run_workflow,
        maxIf(budget_tokens, kind = 'run') AS run_budget_tokens,
        maxIf(budget_usd, kind = 'run') AS run_budget_usd
    FROM spans FINAL
    WHERE project = {project:String} AND trace_id IN (SELECT trace_id FROM traces)
      AND run_id IN (SELECT run_id FROM chosen) AND kind != 'outcome'
    GROUP BY run_id
)"""

# The verdict of a run: the latest by its own timestamp, ties broken by the later arrival.
_VERDICT = """
verdict AS (
    SELECT
        run_id,
        argMax(outcome, (decided_at, ingested_at)) AS v_outcome,
        argMax(score, (decided_at, ingested_at)) AS v_score
    FROM outcomes FINAL
    WHERE project = {project:String} AND run_id IN (SELECT run_id FROM chosen)
      AND outcome IN ('correct', 'incorrect')
    GROUP BY run_id
)"""

# Usage spans and step spans of the chosen runs, one row each. The usage spans are those
# whose usage and cost count: a foreign span (kind '') that is the parent of another span
# carrying usage in the same trace is a roll-up (ingest marks the ones it sees in one
# request; this catches those whose children came in another).
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
        task_complexity, task_sensitivity, task_context, provider, model, tool_name,
        error_type, start_time, end_time,
        if(step_id != '',
           concat('i', step_id, '#', toString(coalesce(attempt, 1))),
           concat('s', if(kind = 'step', CAST(span_id AS String), parent_span_id))) AS anchor,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        reingested_tokens, predicted_tokens, cost_usd, cost_source,
        NOT is_step AND NOT is_tool AND cost_usd IS NULL
            AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL OR model != '')
            AS is_unpriced
    FROM spans FINAL
    WHERE project = {project:String} AND trace_id IN (SELECT trace_id FROM traces)
      AND run_id IN (SELECT run_id FROM chosen)
      AND (kind = 'step' OR (counts_usage AND kind IN ('llm', 'tool', '')))
      AND NOT (kind = '' AND (trace_id, CAST(span_id AS String)) IN (
          SELECT trace_id, parent_span_id
          FROM spans
          WHERE project = {project:String} AND trace_id IN (SELECT trace_id FROM traces)
            AND parent_span_id != ''
            AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL
                 OR cost_usd IS NOT NULL)))
),
alias AS (
    -- A call without step_id whose parent step span has one joins that span's attempt.
    SELECT run_id, concat('s', sid) AS source, anchor AS target
    FROM base
    WHERE is_step AND step_id != '' AND (trace_id, sid) IN (
        SELECT trace_id, parent_span_id FROM base WHERE NOT is_step AND step_id = '')
),
keyed AS (
    SELECT b.*, if(al.target != '', al.target, b.anchor) AS attempt_key
    FROM base AS b
    LEFT JOIN alias AS al ON al.run_id = b.run_id AND al.source = b.anchor
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
        if(has_step, anyIf(attempt_n, is_step), any(attempt_n)) AS a_attempt,
        anyIf(step_id, step_id != '') AS a_step_id,
        coalesce(maxIf(attempt_accepted, is_step), max(attempt_accepted)) AS a_flag,
        anyIf(sid, is_step) AS a_sid,
        min(start_time) AS a_start,
        max(end_time) AS a_end,
        countIf(NOT is_step AND NOT is_tool) AS a_calls,
        sumIf(ifNull(input_tokens, 0), NOT is_step AND NOT is_tool) AS a_input,
        sumIf(ifNull(output_tokens, 0), NOT is_step AND NOT is_tool) AS a_output,
        sumIf(assumeNotNull(cost_usd), NOT is_step AND cost_usd IS NOT NULL) AS a_cost
    FROM keyed
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

_DERIVE_HEAD = f"WITH{_SCOPE},{_RUN_INFO},{_BASE},{_ATTEMPTS}"

_USAGE_COLUMNS = """project, run_id, trace_id, span_id, workflow, run_start, kind, is_tool,
    name, step, step_id, attempt, in_step, attempt_key, accepted, tier, task_complexity,
    task_sensitivity, task_context, provider, model, tool_name, start_time, end_time,
    input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
    reingested_tokens, predicted_tokens, cost_usd, cost_source, unpriced, error_type,
    version, is_deleted"""

# A call's own tier (copied from its attempt, or from the tier map) wins; when empty, its
# attempt's tier applies. Its step is its attempt's; outside any attempt, its own.
_USAGE_INSERT = f"""
INSERT INTO usage_rollup ({_USAGE_COLUMNS})
{_DERIVE_HEAD}
SELECT
    {{project:String}}, k.run_id, k.trace_id, k.sid, r.run_workflow, r.run_start, k.kind,
    k.is_tool, k.name,
    if(a.in_attempt, a.a_step, k.step_name),
    if(a.in_attempt, a.a_step_id, ''),
    if(a.in_attempt, toNullable(toUInt32(a.a_attempt)), NULL),
    a.in_attempt, k.attempt_key, a.accepted = 1,
    if(k.tier != '', k.tier, a.a_tier),
    k.task_complexity, k.task_sensitivity, k.task_context, k.provider, k.model, k.tool_name,
    k.start_time, k.end_time, k.input_tokens, k.output_tokens, k.cache_read_tokens,
    k.cache_write_tokens, k.reasoning_tokens, k.reingested_tokens, k.predicted_tokens,
    k.cost_usd, k.cost_source, k.is_unpriced, k.error_type,
    {{version:UInt64}}, 0
FROM keyed AS k
INNER JOIN attempts AS a ON a.run_id = k.run_id AND a.attempt_key = k.attempt_key
LEFT JOIN run_info AS r ON r.run_id = k.run_id
WHERE NOT k.is_step"""

_ATTEMPT_INSERT = f"""
INSERT INTO attempt_rollup (project, run_id, attempt_key, workflow, run_start, step, step_id,
    instance, attempt, accepted, tier, span_id, start_time, end_time, has_usage, calls,
    input_tokens, output_tokens, cost_usd, version, is_deleted)
{_DERIVE_HEAD}
SELECT
    {{project:String}}, a.run_id, a.attempt_key, r.run_workflow, r.run_start, a.a_step,
    a.a_step_id, a.instance, a.a_attempt, a.accepted = 1, a.a_tier, a.a_sid, a.a_start,
    a.a_end, a.has_usage, a.a_calls, a.a_input, a.a_output, a.a_cost,
    {{version:UInt64}}, 0
FROM attempts AS a
LEFT JOIN run_info AS r ON r.run_id = a.run_id
WHERE a.in_attempt"""

# The usage rows of the chosen runs as the sums below need them.
_USAGE_OF_CHOSEN = """
usage AS (
    SELECT
        run_id, step, tier, model, is_tool, NOT is_tool AS is_call, in_step, accepted,
        attempt_key,
        ifNull(input_tokens, 0) AS i, ifNull(output_tokens, 0) AS o,
        ifNull(cache_read_tokens, 0) AS cr, ifNull(cache_write_tokens, 0) AS cw,
        ifNull(reingested_tokens, 0) AS ri,
        if(reingested_tokens IS NULL, 0, ifNull(input_tokens, 0)) AS rb,
        cost_usd, unpriced
    FROM usage_rollup FINAL
    WHERE project = {project:String} AND run_id IN (SELECT run_id FROM chosen)
)"""

# Sums over usage rows: model calls count in tokens and calls, tool calls only in cost.
_SUMS = """
    sumIf(1, is_call) AS calls,
    sumIf(i, is_call) AS input_tokens,
    sumIf(o, is_call) AS output_tokens,
    sumIf(cr, is_call) AS cached_tokens,
    sumIf(cw, is_call) AS cache_write_tokens,
    sumIf(ri, is_call) AS reingested_tokens,
    sumIf(rb, is_call) AS reingest_base_tokens,
    sumIf(i + o, is_call AND accepted) AS accepted_tokens,
    sumIf(assumeNotNull(cost_usd), cost_usd IS NOT NULL) AS priced_cost,
    sumIf(assumeNotNull(cost_usd), cost_usd IS NOT NULL AND accepted) AS accepted_cost,
    countIf(cost_usd IS NOT NULL) AS priced_rows,
    countIf(unpriced) AS unpriced_calls"""

_RUN_INSERT = f"""
INSERT INTO run_rollup (project, run_id, workflow, start_time, end_time, verdict,
    outcome_score, calls, tool_calls, attempts, input_tokens, output_tokens, cached_tokens,
    cache_write_tokens, reingested_tokens, reingest_base_tokens, accepted_tokens, priced_cost,
    accepted_cost, priced_rows, unpriced_calls, budget_tokens, budget_usd, version,
    is_deleted)
WITH{_SCOPE},{_RUN_INFO},{_VERDICT},{_USAGE_OF_CHOSEN},
totals AS (
    SELECT run_id, {_SUMS},
        countIf(is_tool) AS tool_calls,
        countIf(is_call AND NOT in_step) AS outside_calls
    FROM usage GROUP BY run_id
),
stepped AS (
    SELECT run_id, count() AS in_step_attempts
    FROM attempt_rollup FINAL
    WHERE project = {{project:String}} AND run_id IN (SELECT run_id FROM chosen)
    GROUP BY run_id
)
SELECT
    {{project:String}}, r.run_id, r.run_workflow, r.run_start, r.run_end,
    ifNull(v.v_outcome, ''), if(ifNull(v.v_outcome, '') = '', NULL, v.v_score),
    t.calls, t.tool_calls, ifNull(s.in_step_attempts, 0) + t.outside_calls,
    t.input_tokens, t.output_tokens, t.cached_tokens, t.cache_write_tokens,
    t.reingested_tokens, t.reingest_base_tokens, t.accepted_tokens, t.priced_cost,
    t.accepted_cost, t.priced_rows, t.unpriced_calls, r.run_budget_tokens, r.run_budget_usd,
    {{version:UInt64}}, 0
FROM run_info AS r
LEFT JOIN verdict AS v ON v.run_id = r.run_id
LEFT JOIN totals AS t ON t.run_id = r.run_id
LEFT JOIN stepped AS s ON s.run_id = r.run_id
SETTINGS join_use_nulls = 0"""

# Per run, one row per grain and group (see group_rollup in 004_rollups.sql). Usage rows and
# attempts without usage ("markers") are spread over the seven grains of step, tier and
# model with ARRAY JOIN, the dimensions outside a grain blanked; grain 0 is the run row.
_GROUP_INSERT = f"""
INSERT INTO group_rollup (project, day, grain, run_id, step, tier, model, workflow,
    run_start, verdict, has_usage, attempts_usage, attempts_marker, calls, input_tokens,
    output_tokens, cached_tokens, cache_write_tokens, reingested_tokens,
    reingest_base_tokens, accepted_tokens, priced_cost, accepted_cost, priced_rows,
    unpriced_calls, version, is_deleted)
WITH{_SCOPE},{_USAGE_OF_CHOSEN},
facts AS (
    SELECT run_id, step, tier, model, is_call, in_step, accepted, attempt_key,
        false AS is_marker, i, o, cr, cw, ri, rb, cost_usd, unpriced
    FROM usage
    UNION ALL
    SELECT run_id, step, tier, '', false, true, accepted, attempt_key, true, 0, 0, 0, 0, 0,
        0, NULL, false
    FROM attempt_rollup FINAL
    WHERE project = {{project:String}} AND run_id IN (SELECT run_id FROM chosen)
      AND NOT has_usage
),
groups AS (
    SELECT
        run_id, grain,
        if(bitTest(grain, 0), step, '') AS g_step,
        if(bitTest(grain, 1), tier, '') AS g_tier,
        if(bitTest(grain, 2), model, '') AS g_model,
        countIf(NOT is_marker) > 0 AS g_has_usage,
        uniqExactIf(attempt_key, in_step AND NOT is_marker)
            + countIf(is_call AND NOT in_step) AS g_attempts_usage,
        uniqExactIf(attempt_key, is_marker) AS g_attempts_marker,
        {_SUMS}
    FROM facts
    ARRAY JOIN [1, 2, 3, 4, 5, 6, 7] AS grain
    GROUP BY run_id, grain, g_step, g_tier, g_model
    UNION ALL
    SELECT
        run_id, 0, '', '', '', true, attempts, 0, calls, input_tokens, output_tokens,
        cached_tokens, cache_write_tokens, reingested_tokens, reingest_base_tokens,
        accepted_tokens, priced_cost, accepted_cost, priced_rows, unpriced_calls
    FROM run_rollup FINAL
    WHERE project = {{project:String}} AND run_id IN (SELECT run_id FROM chosen)
),
runs_of AS (
    SELECT run_id, workflow, start_time, verdict FROM run_rollup FINAL
    WHERE project = {{project:String}} AND run_id IN (SELECT run_id FROM chosen)
)
SELECT
    {{project:String}}, toDate(r.start_time, 'UTC'), g.grain, g.run_id, g.g_step, g.g_tier,
    g.g_model, r.workflow, r.start_time, r.verdict, g.g_has_usage, g.g_attempts_usage,
    g.g_attempts_marker, g.calls, g.input_tokens, g.output_tokens, g.cached_tokens,
    g.cache_write_tokens, g.reingested_tokens, g.reingest_base_tokens, g.accepted_tokens,
    g.priced_cost, g.accepted_cost, g.priced_rows, g.unpriced_calls, {{version:UInt64}}, 0
FROM groups AS g
INNER JOIN runs_of AS r ON r.run_id = g.run_id"""

# The days whose runs a pass touches: where they start now and where they started before.
_DAYS_OF_CHOSEN = """
SELECT DISTINCT toDate(start_time, 'UTC') FROM run_rollup FINAL
WHERE project = {project:String} AND run_id IN (SELECT arrayJoin({runs:Array(String)}))"""

# group_rollup added up per day, workflow and group, for the days of a pass.
_CELLS_INSERT = """
INSERT INTO metric_cells (project, grain, day, workflow, step, tier, model, runs,
    runs_usage, known_runs, known_runs_usage, correct_runs, correct_runs_usage, attempts,
    attempts_usage, calls, input_tokens, output_tokens, cached_tokens, cache_write_tokens,
    reingested_tokens, reingest_base_tokens, accepted_tokens, priced_cost, accepted_cost,
    priced_rows, unpriced_calls, judged_cost, judged_priced_rows, judged_unpriced_calls,
    version, is_deleted)
SELECT
    project, grain, day, workflow, step, tier, model,
    count(), countIf(has_usage = 1),
    countIf(verdict != ''), countIf(verdict != '' AND has_usage = 1),
    countIf(verdict = 'correct'), countIf(verdict = 'correct' AND has_usage = 1),
    sum(attempts_usage + attempts_marker), sum(attempts_usage),
    sum(calls), sum(input_tokens), sum(output_tokens), sum(cached_tokens),
    sum(cache_write_tokens), sum(reingested_tokens), sum(reingest_base_tokens),
    sum(accepted_tokens), sum(priced_cost), sum(accepted_cost), sum(priced_rows),
    sum(unpriced_calls),
    sumIf(priced_cost, verdict != ''), sumIf(priced_rows, verdict != ''),
    sumIf(unpriced_calls, verdict != ''),
    {version:UInt64}, 0
FROM group_rollup FINAL
WHERE project = {project:String} AND day IN (SELECT arrayJoin({days:Array(Date)}))
GROUP BY project, grain, day, workflow, step, tier, model"""

_CELLS_RETIRE = """
INSERT INTO metric_cells (project, grain, day, workflow, step, tier, model, version,
    is_deleted)
SELECT project, grain, day, workflow, step, tier, model, {version:UInt64}, 1
FROM metric_cells FINAL
WHERE project = {project:String} AND day IN (SELECT arrayJoin({days:Array(Date)}))
  AND version < {version:UInt64}"""

# Rows of earlier passes over the chosen runs that this pass did not produce again.
_RETIRE = """
INSERT INTO {table} ({keys}, version, is_deleted)
SELECT {keys}, {{version:UInt64}}, 1
FROM {table} FINAL
WHERE project = {{project:String}}
  AND run_id IN (SELECT arrayJoin({{runs:Array(String)}})){where}
  AND version < {{version:UInt64}}"""
_KEYS: Final = {
    "usage_rollup": "project, run_id, trace_id, span_id",
    "attempt_rollup": "project, run_id, attempt_key",
    "group_rollup": "project, day, grain, run_id, step, tier, model",
}

# The runs touched in a window of ingestion, with the first trace of their new spans: runs
# sorted by it form chunks whose spans lie close together in the primary key of `spans`, so
# that each chunk reads its own stretch of the table rather than all of it.
_TOUCHED = """
SELECT project, run_id, min(trace_id) AS first_trace FROM (
    SELECT project, run_id, CAST(trace_id AS String) AS trace_id FROM spans
    WHERE ingested_at > {since:DateTime64(9, 'UTC')}
      AND ingested_at <= {upto:DateTime64(9, 'UTC')} AND run_id != ''
    UNION ALL
    SELECT project, run_id, '' FROM outcomes
    WHERE ingested_at > {since:DateTime64(9, 'UTC')}
      AND ingested_at <= {upto:DateTime64(9, 'UTC')} AND run_id != ''
)
GROUP BY project, run_id
ORDER BY project, first_trace, run_id"""
_NEW_TRACES = """
INSERT INTO run_traces (project, run_id, trace_id)
SELECT project, run_id, trace_id FROM spans
WHERE ingested_at > {since:DateTime64(9, 'UTC')} AND ingested_at <= {upto:DateTime64(9, 'UTC')}
  AND run_id != ''
GROUP BY project, run_id, trace_id"""


class Rollups:
    """Keeps the rollup tables of one store up to date; safe to share between threads."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lag = 0.0 if store.is_embedded else SERVER_LAG_SECONDS
        self._lock = threading.Lock()
        self._through: datetime | None = None
        # The store's write count after the last pass, and the writes of the current pass.
        self._writes_seen: int | None = None
        self._own_writes = 0
        self._barriers: list[Callable[[], None]] = []

    def add_barrier(self, flush: Callable[[], None]) -> None:
        """Call ``flush`` before each pass: a writer's, so that what it acknowledged is read."""
        self._barriers.append(flush)

    def remove_barrier(self, flush: Callable[[], None]) -> None:
        if flush in self._barriers:
            self._barriers.remove(flush)

    def wait_for_writes(self) -> None:
        """Return once the rows every registered writer acknowledged are in the store."""
        for flush in list(self._barriers):
            flush()

    def catch_up(self) -> int:
        """Derive every run touched since the last pass; return how many were derived."""
        self.wait_for_writes()
        with self._lock:
            writes = self._store.writes
            if self._store.is_embedded and writes == self._writes_seen:
                return 0  # this process is chDB's only writer, and it wrote nothing since
            if self._through is None:
                self._through = self._read_watermark()
            self._own_writes = 0
            since = self._through
            (now,) = self._store.query("SELECT now64(9)")[0]
            upto = _utc(now)
            if upto <= since:
                return 0
            window = {"since": since, "upto": upto}
            started = time.perf_counter()
            touched = self._store.query(_TOUCHED, window)
            if touched:
                self._command(_NEW_TRACES, window)
                by_project: dict[str, list[str]] = defaultdict(list)
                for project, run_id, _ in touched:
                    by_project[str(project)].append(str(run_id))
                for project, run_ids in by_project.items():
                    days: set[date] = set()
                    for chunk in _chunks(run_ids, CHUNK_RUNS):
                        days |= self._derive(project, chunk)
                    self._add_up_days(project, sorted(days))
            # Rows another collector stamped a moment ago may still be committing: the next
            # pass looks at the last few seconds again (deriving a run twice is harmless).
            through = max(since, upto - timedelta(seconds=self._lag))
            self._own_writes += 1
            self._store.insert(WATERMARK_TABLE, [[_WATERMARK, through]], ["name", "through"])
            self._through = through
            # The pass's own statements wrote too; only somebody else's writes are news.
            self._writes_seen = writes + self._own_writes
            if touched:
                logger.info(
                    "rollups: derived runs=%d in %.2f s",
                    len(touched),
                    time.perf_counter() - started,
                )
            return len(touched)

    def rebuild(self) -> int:
        """Forget the watermark and derive every run again (after a change of rules)."""
        with self._lock:
            self._through = _EPOCH
            self._writes_seen = None
        return self.catch_up()

    def _derive(self, project: str, run_ids: list[str]) -> set[date]:
        """Derive the rows of ``run_ids``; return the days their runs start (or started) on."""
        params: dict[str, Any] = {
            "project": project,
            "runs": run_ids,
            "version": time.time_ns(),
        }
        command = self._command
        days = self._days(params)
        command(_USAGE_INSERT, params)
        command(_ATTEMPT_INSERT, params)
        for table in ("usage_rollup", "attempt_rollup"):
            command(_RETIRE.format(table=table, keys=_KEYS[table], where=""), params)
        command(_RUN_INSERT, params)
        days |= self._days(params)
        params["days"] = sorted(days)
        command(_GROUP_INSERT, params)
        in_days = " AND day IN (SELECT arrayJoin({days:Array(Date)}))"
        command(
            _RETIRE.format(table="group_rollup", keys=_KEYS["group_rollup"], where=in_days),
            params,
        )
        return days

    def _days(self, params: dict[str, Any]) -> set[date]:
        return {row[0] for row in self._store.query(_DAYS_OF_CHOSEN, params)}

    def _add_up_days(self, project: str, days: list[date]) -> None:
        """Derive the metric cells of ``days`` again from their group rows."""
        if not days:
            return
        params: dict[str, Any] = {"project": project, "days": days, "version": time.time_ns()}
        self._command(_CELLS_INSERT, params)
        self._command(_CELLS_RETIRE, params)

    def _command(self, sql: str, params: dict[str, Any]) -> None:
        self._own_writes += 1
        self._store.command(sql, params)

    def _read_watermark(self) -> datetime:
        rows = self._store.query(
            f"SELECT through FROM {WATERMARK_TABLE} FINAL WHERE name = {{name:String}}",
            {"name": _WATERMARK},
        )
        return _utc(rows[0][0]) if rows else _EPOCH


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RollupLoop:
    """Catches up in the background every ``interval_seconds``, so that reads rarely wait.

    Under heavy ingest a pass takes longer, since it derives more runs; the loop then rests
    :data:`REST_PER_PASS_SECOND` times as long as the pass took (when that is longer than the
    interval), so that background passes never take more than a fifth of the store's time
    from ingest. Fewer, larger passes also cost less in all: each one reads the spans of its
    runs through the primary key, whose granules many runs share. A read catches up first
    whatever the loop did.
    """

    def __init__(self, rollups: Rollups, interval_seconds: float) -> None:
        self._rollups = rollups
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentledger-rollups", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        rest = self._interval
        while not self._stop.wait(rest):
            started = time.monotonic()
            try:
                self._rollups.catch_up()
            except Exception:  # the store may be away; the next pass or read tries again
                logger.exception("rollups: background pass failed")
            rest = max(self._interval, REST_PER_PASS_SECOND * (time.monotonic() - started))


_BY_STORE: weakref.WeakKeyDictionary[Store, Rollups] = weakref.WeakKeyDictionary()
_BY_STORE_LOCK = threading.Lock()


def rollups_of(store: Store) -> Rollups:
    """The one ``Rollups`` of ``store`` in this process, so that passes never overlap."""
    with _BY_STORE_LOCK:
        found = _BY_STORE.get(store)
        if found is None:
            found = _BY_STORE[store] = Rollups(store)
        return found
