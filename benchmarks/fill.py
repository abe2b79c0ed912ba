"""Fill a store with synthetic agent runs in ClickHouse itself, for the benchmarks.

``fill(store, calls)`` inserts with ``INSERT ... SELECT`` from ``numbers()``, so that a store
of 10,000,000 llm calls fills in minutes rather than through hours of OTLP replay: runs of
five steps with two model calls per attempt, one step in ten retried, routing axes,
re-ingested and predicted tokens, and verdicts for nine runs in ten.
"""

from __future__ import annotations

from agentledger.collector.store import Store

STEPS = 5
CALLS_PER_ATTEMPT = 2

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
