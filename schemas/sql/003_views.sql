-- Views for ad-hoc SQL, with plain column names. They follow docs/metrics.md (section
-- "Ad-hoc SQL" there lists their columns) and read through FINAL, so a re-delivered span or
-- verdict counts once. Every view covers all projects: filter on `project`.
--
-- llm_calls: one row per counted model call (kind llm, or a foreign usage span that is not
-- a tool call and not a roll-up of other usage spans), with its run, the run's workflow,
-- the step and attempt it belongs to, whether that attempt's output was accepted, its tier
-- (the call's own, else its attempt's), model, tokens and cost.
CREATE OR REPLACE VIEW llm_calls AS
WITH
run_info AS (
    SELECT
        project,
        run_id,
        if(countIf(kind = 'run' AND workflow != '') > 0,
           anyIf(workflow, kind = 'run' AND workflow != ''),
           anyIf(workflow, workflow != '')) AS run_workflow,
        min(start_time) AS run_start
    FROM spans FINAL
    WHERE run_id != '' AND kind != 'outcome'
    GROUP BY project, run_id
),
rollups AS (
    SELECT DISTINCT project, trace_id, parent_span_id
    FROM spans FINAL
    WHERE parent_span_id != ''
      AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL OR cost_usd IS NOT NULL)
),
base AS (
    SELECT
        project, run_id, trace_id, CAST(span_id AS String) AS sid, parent_span_id, kind,
        kind = 'step' AS is_step,
        kind = 'tool' OR operation = 'execute_tool' AS is_tool,
        name, step_name, step_id, tier, coalesce(attempt, 1) AS attempt_n, attempt_accepted,
        task_complexity, task_sensitivity, task_context,
        provider, model, start_time, end_time, error_type,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        reingested_tokens, predicted_tokens, cost_usd, cost_source,
        if(step_id != '',
           concat('i', step_id, '#', toString(coalesce(attempt, 1))),
           concat('s', if(kind = 'step', CAST(span_id AS String), parent_span_id))) AS anchor
    FROM spans FINAL
    WHERE run_id != ''
      AND (kind = 'step' OR (counts_usage AND kind IN ('llm', 'tool', '')))
      AND NOT (kind = '' AND (project, trace_id, CAST(span_id AS String)) IN (
          SELECT project, trace_id, parent_span_id FROM rollups))
),
alias AS (
    SELECT project, run_id, concat('s', sid) AS source, anchor AS target
    FROM base
    WHERE is_step AND step_id != '' AND (project, trace_id, sid) IN (
        SELECT project, trace_id, parent_span_id FROM base WHERE NOT is_step AND step_id = '')
),
keyed AS (
    SELECT b.*, if(al.target != '', al.target, b.anchor) AS attempt_key
    FROM base AS b
    LEFT JOIN alias AS al
        ON al.project = b.project AND al.run_id = b.run_id AND al.source = b.anchor
),
attempt_info AS (
    SELECT
        project, run_id, attempt_key,
        countIf(is_step) > 0 AS has_step,
        has_step OR startsWith(attempt_key, 'i') AS in_attempt,
        if(has_step, anyIf(step_name, is_step), any(step_name)) AS a_step,
        if(countIf(is_step AND tier != '') > 0,
           anyIf(tier, is_step AND tier != ''), anyIf(tier, tier != '')) AS a_tier,
        if(has_step, anyIf(attempt_n, is_step), any(attempt_n)) AS a_attempt,
        anyIf(step_id, step_id != '') AS a_step_id,
        coalesce(maxIf(attempt_accepted, is_step), max(attempt_accepted)) AS a_flag,
        min(start_time) AS a_start
    FROM keyed
    GROUP BY project, run_id, attempt_key
),
attempt_instances AS (
    SELECT
        *,
        multiIf(NOT in_attempt, '',
                a_step_id != '', concat('i', a_step_id),
                concat('n', a_step, '#', toString(row_number() OVER (
                    PARTITION BY project, run_id, in_attempt, a_step_id = '', a_step, a_attempt
                    ORDER BY a_start, attempt_key)))) AS instance
    FROM attempt_info
),
attempts AS (
    SELECT
        *,
        max(a_attempt) OVER (PARTITION BY project, run_id, instance) AS last_attempt,
        multiIf(NOT in_attempt, 1, a_flag IS NULL, a_attempt = last_attempt, a_flag = 1)
            AS accepted
    FROM attempt_instances
)
SELECT
    k.project AS project,
    k.run_id AS run_id,
    r.run_workflow AS workflow,
    r.run_start AS run_start,
    k.trace_id AS trace_id,
    k.sid AS span_id,
    k.name AS name,
    if(a.in_attempt, a.a_step, k.step_name) AS step,
    if(a.in_attempt, a.a_step_id, '') AS step_id,
    if(a.in_attempt, toNullable(a.a_attempt), NULL) AS attempt,
    toBool(a.in_attempt) AS in_step,
    toBool(a.accepted) AS accepted,
    if(k.tier != '', k.tier, a.a_tier) AS tier,
    k.task_complexity AS task_complexity,
    k.task_sensitivity AS task_sensitivity,
    k.task_context AS task_context,
    k.provider AS provider,
    k.model AS model,
    k.start_time AS start_time,
    k.end_time AS end_time,
    k.input_tokens AS input_tokens,
    k.output_tokens AS output_tokens,
    k.cache_read_tokens AS cached_tokens,
    k.cache_write_tokens AS cache_write_tokens,
    k.reasoning_tokens AS reasoning_tokens,
    k.reingested_tokens AS reingested_tokens,
    k.predicted_tokens AS predicted_tokens,
    k.cost_usd AS cost_usd,
    k.cost_source AS cost_source,
    toBool(k.cost_usd IS NULL
           AND (k.input_tokens IS NOT NULL OR k.output_tokens IS NOT NULL OR k.model != ''))
        AS unpriced,
    k.error_type AS error_type
FROM keyed AS k
INNER JOIN attempts AS a
    ON a.project = k.project AND a.run_id = k.run_id AND a.attempt_key = k.attempt_key
LEFT JOIN run_info AS r ON r.project = k.project AND r.run_id = k.run_id
WHERE NOT k.is_step AND NOT k.is_tool;

-- runs: one row per run with its totals over its usage spans (model calls for tokens and
-- calls; calls and tools for cost) and its resolved verdict: the latest by decided_at, ties
-- broken by the later arrival; NULL while no verdict arrived. cost_usd is NULL when the run
-- has unpriced calls and no known cost, 0 when it has nothing to pay for.
CREATE OR REPLACE VIEW runs AS
WITH
run_info AS (
    SELECT
        project,
        run_id,
        if(countIf(kind = 'run' AND workflow != '') > 0,
           anyIf(workflow, kind = 'run' AND workflow != ''),
           anyIf(workflow, workflow != '')) AS run_workflow,
        min(start_time) AS run_start,
        max(end_time) AS run_end,
        maxIf(budget_tokens, kind = 'run') AS run_budget_tokens,
        maxIf(budget_usd, kind = 'run') AS run_budget_usd
    FROM spans FINAL
    WHERE run_id != '' AND kind != 'outcome'
    GROUP BY project, run_id
),
verdict AS (
    SELECT
        project, run_id,
        argMax(outcome, (decided_at, ingested_at)) AS v_outcome,
        argMax(score, (decided_at, ingested_at)) AS v_score,
        max(decided_at) AS v_decided_at
    FROM outcomes FINAL
    WHERE outcome IN ('correct', 'incorrect')
    GROUP BY project, run_id
),
rollups AS (
    SELECT DISTINCT project, trace_id, parent_span_id
    FROM spans FINAL
    WHERE parent_span_id != ''
      AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL OR cost_usd IS NOT NULL)
),
usage AS (
    SELECT
        project, run_id,
        kind = 'tool' OR operation = 'execute_tool' AS is_tool,
        input_tokens, output_tokens, cache_read_tokens, reingested_tokens, cost_usd,
        NOT is_tool AND cost_usd IS NULL
            AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL OR model != '')
            AS is_unpriced
    FROM spans FINAL
    WHERE run_id != '' AND counts_usage AND kind IN ('llm', 'tool', '')
      AND NOT (kind = '' AND (project, trace_id, CAST(span_id AS String)) IN (
          SELECT project, trace_id, parent_span_id FROM rollups))
),
totals AS (
    SELECT
        project, run_id,
        countIf(NOT is_tool) AS t_calls,
        countIf(is_tool) AS t_tool_calls,
        sumIf(ifNull(input_tokens, 0), NOT is_tool) AS t_input,
        sumIf(ifNull(output_tokens, 0), NOT is_tool) AS t_output,
        sumIf(ifNull(cache_read_tokens, 0), NOT is_tool) AS t_cached,
        sumIf(ifNull(reingested_tokens, 0), NOT is_tool) AS t_reingested,
        sumIf(assumeNotNull(cost_usd), cost_usd IS NOT NULL) AS t_cost,
        countIf(cost_usd IS NOT NULL) AS t_priced,
        countIf(is_unpriced) AS t_unpriced
    FROM usage
    GROUP BY project, run_id
)
SELECT
    r.project AS project,
    r.run_id AS run_id,
    r.run_workflow AS workflow,
    r.run_start AS start_time,
    r.run_end AS end_time,
    toString(toDate(r.run_start, 'UTC')) AS day,
    if(v.v_outcome = '', NULL, toNullable(toString(v.v_outcome))) AS outcome,
    if(v.v_outcome = '', NULL, v.v_score) AS outcome_score,
    toBool(v.v_outcome = 'correct') AS correct,
    ifNull(t.t_calls, 0) AS calls,
    ifNull(t.t_tool_calls, 0) AS tool_calls,
    ifNull(t.t_input, 0) AS input_tokens,
    ifNull(t.t_output, 0) AS output_tokens,
    ifNull(t.t_input, 0) + ifNull(t.t_output, 0) AS total_tokens,
    ifNull(t.t_cached, 0) AS cached_tokens,
    ifNull(t.t_reingested, 0) AS reingested_tokens,
    if(ifNull(t.t_priced, 0) = 0 AND ifNull(t.t_unpriced, 0) > 0,
       NULL, toNullable(ifNull(t.t_cost, toDecimal128(0, 12)))) AS cost_usd,
    ifNull(t.t_unpriced, 0) AS unpriced_calls,
    toBool(ifNull(t.t_unpriced, 0) = 0) AS cost_complete,
    r.run_budget_tokens AS budget_tokens,
    r.run_budget_usd AS budget_usd
FROM run_info AS r
LEFT JOIN verdict AS v ON v.project = r.project AND v.run_id = r.run_id
LEFT JOIN totals AS t ON t.project = r.project AND t.run_id = r.run_id;

-- step_attempts: one row per attempt of a step instance (see "Attempt" in docs/metrics.md),
-- also an attempt without calls, with its instance, acceptance, tier and usage: model calls
-- for tokens and calls, calls and tools for cost.
CREATE OR REPLACE VIEW step_attempts AS
WITH
run_info AS (
    SELECT
        project,
        run_id,
        if(countIf(kind = 'run' AND workflow != '') > 0,
           anyIf(workflow, kind = 'run' AND workflow != ''),
           anyIf(workflow, workflow != '')) AS run_workflow,
        min(start_time) AS run_start
    FROM spans FINAL
    WHERE run_id != '' AND kind != 'outcome'
    GROUP BY project, run_id
),
rollups AS (
    SELECT DISTINCT project, trace_id, parent_span_id
    FROM spans FINAL
    WHERE parent_span_id != ''
      AND (input_tokens IS NOT NULL OR output_tokens IS NOT NULL OR cost_usd IS NOT NULL)
),
base AS (
    SELECT
        project, run_id, trace_id, CAST(span_id AS String) AS sid, parent_span_id, kind,
        kind = 'step' AS is_step,
        kind = 'tool' OR operation = 'execute_tool' AS is_tool,
        name, step_name, step_id, tier, coalesce(attempt, 1) AS attempt_n, attempt_accepted,
        task_complexity, task_sensitivity, task_context,
        provider, model, start_time, end_time, error_type,
        input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens,
        reingested_tokens, predicted_tokens, cost_usd, cost_source,
        if(step_id != '',
           concat('i', step_id, '#', toString(coalesce(attempt, 1))),
           concat('s', if(kind = 'step', CAST(span_id AS String), parent_span_id))) AS anchor
    FROM spans FINAL
    WHERE run_id != ''
      AND (kind = 'step' OR (counts_usage AND kind IN ('llm', 'tool', '')))
      AND NOT (kind = '' AND (project, trace_id, CAST(span_id AS String)) IN (
          SELECT project, trace_id, parent_span_id FROM rollups))
),
alias AS (
    SELECT project, run_id, concat('s', sid) AS source, anchor AS target
    FROM base
    WHERE is_step AND step_id != '' AND (project, trace_id, sid) IN (
        SELECT project, trace_id, parent_span_id FROM base WHERE NOT is_step AND step_id = '')
),
keyed AS (
    SELECT b.*, if(al.target != '', al.target, b.anchor) AS attempt_key
    FROM base AS b
    LEFT JOIN alias AS al
        ON al.project = b.project AND al.run_id = b.run_id AND al.source = b.anchor
),
attempt_info AS (
    SELECT
        project, run_id, attempt_key,
        countIf(is_step) > 0 AS has_step,
        has_step OR startsWith(attempt_key, 'i') AS in_attempt,
        if(has_step, anyIf(step_name, is_step), any(step_name)) AS a_step,
        if(countIf(is_step AND tier != '') > 0,
           anyIf(tier, is_step AND tier != ''), anyIf(tier, tier != '')) AS a_tier,
        if(has_step, anyIf(attempt_n, is_step), any(attempt_n)) AS a_attempt,
        anyIf(step_id, step_id != '') AS a_step_id,
        coalesce(maxIf(attempt_accepted, is_step), max(attempt_accepted)) AS a_flag,
        min(start_time) AS a_start
    FROM keyed
    GROUP BY project, run_id, attempt_key
),
attempt_instances AS (
    SELECT
        *,
        multiIf(NOT in_attempt, '',
                a_step_id != '', concat('i', a_step_id),
                concat('n', a_step, '#', toString(row_number() OVER (
                    PARTITION BY project, run_id, in_attempt, a_step_id = '', a_step, a_attempt
                    ORDER BY a_start, attempt_key)))) AS instance
    FROM attempt_info
),
attempts AS (
    SELECT
        *,
        max(a_attempt) OVER (PARTITION BY project, run_id, instance) AS last_attempt,
        multiIf(NOT in_attempt, 1, a_flag IS NULL, a_attempt = last_attempt, a_flag = 1)
            AS accepted
    FROM attempt_instances
)
SELECT
    a.project AS project,
    a.run_id AS run_id,
    r.run_workflow AS workflow,
    r.run_start AS run_start,
    a.a_step AS step,
    a.a_step_id AS step_id,
    concat(a.run_id, '/', a.instance) AS instance,
    a.a_attempt AS attempt,
    toBool(a.accepted) AS accepted,
    a.a_tier AS tier,
    a.a_start AS start_time,
    countIf(NOT k.is_step AND NOT k.is_tool) AS calls,
    sumIf(ifNull(k.input_tokens, 0), NOT k.is_step AND NOT k.is_tool) AS input_tokens,
    sumIf(ifNull(k.output_tokens, 0), NOT k.is_step AND NOT k.is_tool) AS output_tokens,
    sumIf(assumeNotNull(k.cost_usd), NOT k.is_step AND k.cost_usd IS NOT NULL) AS cost_usd
FROM attempts AS a
INNER JOIN keyed AS k
    ON k.project = a.project AND k.run_id = a.run_id AND k.attempt_key = a.attempt_key
LEFT JOIN run_info AS r ON r.project = a.project AND r.run_id = a.run_id
WHERE a.in_attempt
GROUP BY project, run_id, workflow, run_start, step, step_id, instance, attempt, accepted,
         tier, start_time;
