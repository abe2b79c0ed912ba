-- Rollups: what the read side needs, kept per run so that a question over millions of calls
-- reads thousands of rows. collector/rollups.py derives them from `spans` and `outcomes`
-- for every run that received a span or a verdict since its last pass (its watermark is
-- in `rollup_watermark`, kept beside the migrations ledger), and replaces all
-- rows of such a run at once: each row carries the pass's `version`, and a row of an older
-- pass that the new one no longer produces is marked `is_deleted`. Read them through FINAL.
-- docs/metrics.md ("Rollups") describes them; the rules of each figure are unchanged.

-- The traces holding spans of each run, so that a pass reads a run's spans through the
-- primary key of `spans` (project, trace_id, ...) instead of scanning every span.
CREATE TABLE IF NOT EXISTS run_traces
(
    project   LowCardinality(String),
    run_id    String,
    trace_id  FixedString(32)
)
ENGINE = ReplacingMergeTree
ORDER BY (project, run_id, trace_id);

-- One row per usage span that counts (model calls, tool calls and foreign usage spans that
-- are not roll-ups), with its attempt resolved: the `llm_calls` view is its model calls.
CREATE TABLE IF NOT EXISTS usage_rollup
(
    project             LowCardinality(String),
    run_id              String,
    trace_id            FixedString(32),
    span_id             String,
    workflow            LowCardinality(String),
    run_start           DateTime64(9, 'UTC'),
    kind                LowCardinality(String),
    is_tool             Bool,
    name                String,
    step                LowCardinality(String),
    step_id             String,
    attempt             Nullable(UInt32),
    in_step             Bool,
    attempt_key         String,
    accepted            Bool,
    tier                LowCardinality(String),
    task_complexity     LowCardinality(String),
    task_sensitivity    LowCardinality(String),
    task_context        LowCardinality(String),
    provider            LowCardinality(String),
    model               LowCardinality(String),
    tool_name           LowCardinality(String),
    start_time          DateTime64(9, 'UTC'),
    end_time            DateTime64(9, 'UTC'),
    input_tokens        Nullable(UInt64),
    output_tokens       Nullable(UInt64),
    cache_read_tokens   Nullable(UInt64),
    cache_write_tokens  Nullable(UInt64),
    reasoning_tokens    Nullable(UInt64),
    reingested_tokens   Nullable(UInt64),
    predicted_tokens    Nullable(UInt64),
    cost_usd            Nullable(Decimal(18, 12)),
    cost_source         LowCardinality(String),
    unpriced            Bool,
    error_type          LowCardinality(String),
    version             UInt64,
    is_deleted          UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (project, run_id, trace_id, span_id);

-- One row per attempt of a step instance, also one without calls: the `step_attempts` view.
CREATE TABLE IF NOT EXISTS attempt_rollup
(
    project        LowCardinality(String),
    run_id         String,
    attempt_key    String,
    workflow       LowCardinality(String),
    run_start      DateTime64(9, 'UTC'),
    step           LowCardinality(String),
    step_id        String,
    instance       String,
    attempt        UInt32,
    accepted       Bool,
    tier           LowCardinality(String),
    -- the step span's id; '' when only the attempt's calls arrived
    span_id        String,
    start_time     DateTime64(9, 'UTC'),
    end_time       DateTime64(9, 'UTC'),
    has_usage      Bool,
    calls          UInt64,
    input_tokens   UInt64,
    output_tokens  UInt64,
    cost_usd       Decimal(38, 12),
    version        UInt64,
    is_deleted     UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (project, run_id, attempt_key);

-- One row per run: its totals, budgets and resolved verdict (the `runs` view, the run list,
-- budgets and alerts).
CREATE TABLE IF NOT EXISTS run_rollup
(
    project               LowCardinality(String),
    run_id                String,
    workflow              LowCardinality(String),
    start_time            DateTime64(9, 'UTC'),
    end_time              DateTime64(9, 'UTC'),
    -- 'correct', 'incorrect', or '' while no verdict arrived
    verdict               LowCardinality(String),
    outcome_score         Nullable(Float64),
    calls                 UInt64,
    tool_calls            UInt64,
    attempts              UInt64,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cached_tokens         UInt64,
    cache_write_tokens    UInt64,
    reingested_tokens     UInt64,
    reingest_base_tokens  UInt64,
    accepted_tokens       UInt64,
    priced_cost           Decimal(38, 12),
    accepted_cost         Decimal(38, 12),
    priced_rows           UInt64,
    unpriced_calls        UInt64,
    budget_tokens         Nullable(UInt64),
    budget_usd            Nullable(Decimal(18, 9)),
    version               UInt64,
    is_deleted            UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (project, run_id);

-- The sums that metrics add up, per run and grouping. `grain` says which of step (1), tier
-- (2) and model (4) the row is grouped by (a bit mask; the others are ''); grain 0 is the
-- run as a whole, also a run without any call. Each run has one row per grain and group, so
-- runs and attempts add up across runs: `attempts_usage` counts the attempts with usage in
-- the group (plus model calls outside any step), `attempts_marker` those without usage,
-- which have no model and so count only in groupings without it (`has_usage` likewise).
-- Ordered by the day of the run's start, so that one day's rows are one stretch of the key.
CREATE TABLE IF NOT EXISTS group_rollup
(
    project               LowCardinality(String),
    day                   Date,
    grain                 UInt8,
    run_id                String,
    step                  LowCardinality(String),
    tier                  LowCardinality(String),
    model                 LowCardinality(String),
    workflow              LowCardinality(String),
    run_start             DateTime64(9, 'UTC'),
    -- 'correct', 'incorrect', or '' while no verdict arrived
    verdict               LowCardinality(String),
    has_usage             UInt8,
    attempts_usage        UInt64,
    attempts_marker       UInt64,
    calls                 UInt64,
    input_tokens          UInt64,
    output_tokens         UInt64,
    cached_tokens         UInt64,
    cache_write_tokens    UInt64,
    reingested_tokens     UInt64,
    reingest_base_tokens  UInt64,
    accepted_tokens       UInt64,
    priced_cost           Decimal(38, 12),
    accepted_cost         Decimal(38, 12),
    priced_rows           UInt64,
    unpriced_calls        UInt64,
    version               UInt64,
    is_deleted            UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (project, day, grain, run_id, step, tier, model);

-- group_rollup added up per day, workflow and group: what a metrics question over whole days
-- reads (a few rows per day), whatever the size of the store. Re-derived for every day whose
-- runs a pass touched. `*_usage` figures leave out runs and attempts without usage in the
-- group; a grouping by model uses them.
CREATE TABLE IF NOT EXISTS metric_cells
(
    project                LowCardinality(String),
    grain                  UInt8,
    day                    Date,
    workflow               LowCardinality(String),
    step                   LowCardinality(String),
    tier                   LowCardinality(String),
    model                  LowCardinality(String),
    runs                   UInt64,
    runs_usage             UInt64,
    known_runs             UInt64,
    known_runs_usage       UInt64,
    correct_runs           UInt64,
    correct_runs_usage     UInt64,
    attempts               UInt64,
    attempts_usage         UInt64,
    calls                  UInt64,
    input_tokens           UInt64,
    output_tokens          UInt64,
    cached_tokens          UInt64,
    cache_write_tokens     UInt64,
    reingested_tokens      UInt64,
    reingest_base_tokens   UInt64,
    accepted_tokens        UInt64,
    priced_cost            Decimal(38, 12),
    accepted_cost          Decimal(38, 12),
    priced_rows            UInt64,
    unpriced_calls         UInt64,
    judged_cost            Decimal(38, 12),
    judged_priced_rows     UInt64,
    judged_unpriced_calls  UInt64,
    version                UInt64,
    is_deleted             UInt8 DEFAULT 0
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (project, grain, day, workflow, step, tier, model);

-- A pass finds the spans ingested since the watermark without reading every span.
ALTER TABLE spans ADD INDEX IF NOT EXISTS spans_ingested_at ingested_at TYPE minmax GRANULARITY 1;

ALTER TABLE outcomes ADD INDEX IF NOT EXISTS outcomes_ingested_at ingested_at TYPE minmax
    GRANULARITY 1;

-- The ad-hoc views keep their columns and now read the rollups.
CREATE OR REPLACE VIEW llm_calls AS
SELECT
    project, run_id, workflow, run_start, trace_id, span_id, name, step, step_id, attempt,
    in_step, accepted, tier, task_complexity, task_sensitivity, task_context, provider,
    model, start_time, end_time, input_tokens, output_tokens,
    cache_read_tokens AS cached_tokens, cache_write_tokens, reasoning_tokens,
    reingested_tokens, predicted_tokens, cost_usd, cost_source, unpriced, error_type
FROM usage_rollup FINAL
WHERE NOT is_tool;

CREATE OR REPLACE VIEW runs AS
SELECT
    project, run_id, workflow, start_time, end_time,
    toString(toDate(start_time, 'UTC')) AS day,
    if(verdict = '', NULL, toNullable(toString(verdict))) AS outcome,
    outcome_score,
    toBool(verdict = 'correct') AS correct,
    calls, tool_calls, input_tokens, output_tokens,
    input_tokens + output_tokens AS total_tokens,
    cached_tokens, reingested_tokens,
    if(priced_rows = 0 AND unpriced_calls > 0, NULL, toNullable(toDecimal128(priced_cost, 12)))
        AS cost_usd,
    unpriced_calls,
    toBool(unpriced_calls = 0) AS cost_complete,
    budget_tokens, budget_usd
FROM run_rollup FINAL;

CREATE OR REPLACE VIEW step_attempts AS
SELECT
    project, run_id, workflow, run_start, step, step_id,
    concat(run_id, '/', instance) AS instance,
    attempt, accepted, tier, start_time, calls, input_tokens, output_tokens, cost_usd
FROM attempt_rollup FINAL
