-- Alert state changes: one row per transition of one alert (firing, then resolved), written by
-- the collector that evaluates the rules. The current state of an alert is its latest
-- transition by changed_at. A transition is written before it is notified (delivered = 0) and
-- written again once every channel took it (delivered = 1); the re-write replaces the first
-- (same key, later ingested_at), so read through FINAL. idempotency_key is what receivers
-- see: the same transition always carries the same key, also when it is sent again after a
-- restart.
CREATE TABLE IF NOT EXISTS alerts
(
    project          LowCardinality(String),
    -- rule name + subject (a run, a workflow): one alert per rule and subject
    alert_key        String,
    idempotency_key  String,
    rule             String,
    kind             LowCardinality(String),
    state            LowCardinality(String),
    workflow         String,
    run_id           String,
    unit             LowCardinality(String),
    threshold        Decimal(38, 12),
    actual           Nullable(Decimal(38, 12)),
    window_seconds   Nullable(UInt64),
    message          String,
    -- when the breach began (the firing transition of this episode)
    fired_at         DateTime64(9, 'UTC'),
    -- when this transition happened
    changed_at       DateTime64(9, 'UTC'),
    delivered        Bool,
    attempts         UInt32,
    ingested_at      DateTime64(9, 'UTC') DEFAULT now64(9)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (project, alert_key, idempotency_key);
