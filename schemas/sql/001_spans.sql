-- One row per span, whatever its kind. Re-delivered spans share (project, trace_id, span_id):
-- ReplacingMergeTree keeps one of them on merge, and every query reads through FINAL (or an
-- equivalent de-duplication) so that duplicates never count before the merge happens.
CREATE TABLE IF NOT EXISTS spans
(
    project             LowCardinality(String),
    trace_id            FixedString(32),
    span_id             FixedString(16),
    parent_span_id      String,
    -- agentledger.span.kind, or '' for a span of other instrumentation.
    kind                LowCardinality(String),
    name                String,
    start_time          DateTime64(9, 'UTC'),
    end_time            DateTime64(9, 'UTC'),
    status_code         LowCardinality(String),
    ingested_at         DateTime64(9, 'UTC') DEFAULT now64(9),

    -- resource
    service_name        LowCardinality(String),
    service_version     LowCardinality(String),
    environment         LowCardinality(String),

    -- run context (copied by the SDK onto every span of the run)
    run_id              String,
    run_parent_id       String,
    workflow            LowCardinality(String),
    conversation_id     String,
    budget_tokens       Nullable(UInt64),
    budget_usd          Nullable(Decimal(18, 9)),

    -- step context: one attempt of one step instance
    step_name           LowCardinality(String),
    step_id             String,
    tier                LowCardinality(String),
    attempt             Nullable(UInt32),
    attempt_accepted    Nullable(Bool),
    task_complexity     LowCardinality(String),
    task_sensitivity    LowCardinality(String),
    task_context        LowCardinality(String),

    -- model and tool calls
    operation           LowCardinality(String),
    provider            LowCardinality(String),
    request_model       LowCardinality(String),
    response_model      LowCardinality(String),
    -- the response model when known, else the request model
    model               LowCardinality(String),
    tool_name           LowCardinality(String),
    error_type          LowCardinality(String),
    -- 1 when this span's usage and cost count (an innermost carrier, never a roll-up)
    counts_usage        Bool,
    input_tokens        Nullable(UInt64),
    output_tokens       Nullable(UInt64),
    cache_read_tokens   Nullable(UInt64),
    cache_write_tokens  Nullable(UInt64),
    reasoning_tokens    Nullable(UInt64),
    reingested_tokens   Nullable(UInt64),
    predicted_tokens    Nullable(UInt64),
    -- cost in USD: reported by the caller when present, else computed; NULL when unknown
    cost_usd            Nullable(Decimal(18, 12)),
    -- where cost_usd came from: 'reported', 'genai-prices', 'price-file', or '' when unknown
    cost_source         LowCardinality(String),

    -- verdict on a run span or an outcome span
    outcome             LowCardinality(String),
    outcome_score       Nullable(Float64),

    attributes          Map(String, String),
    resource_attributes Map(String, String)
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(start_time)
ORDER BY (project, trace_id, span_id);

-- Verdicts, from run spans, outcome spans and the outcomes API. The latest by its own
-- timestamp wins (ties: the later arrival), resolved at query time.
CREATE TABLE IF NOT EXISTS outcomes
(
    project      LowCardinality(String),
    run_id       String,
    outcome      LowCardinality(String),
    score        Nullable(Float64),
    source       LowCardinality(String),
    decided_at   DateTime64(9, 'UTC'),
    ingested_at  DateTime64(9, 'UTC') DEFAULT now64(9),
    -- identifies one delivery of a verdict, so that a re-delivered one is stored once
    outcome_key  String
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (project, run_id, outcome_key);
