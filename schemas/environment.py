"""Every environment variable that agentledger reads, in one place."""

from __future__ import annotations

from typing import Final

#: OTLP/HTTP endpoint of the collector, as OpenTelemetry exporters read it.
OTEL_EXPORTER_OTLP_ENDPOINT: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
#: Base URL of the collector for the client commands (import, demo, sql).
AGENTLEDGER_ENDPOINT: Final = "AGENTLEDGER_ENDPOINT"
#: Storage DSN of the collector: ``chdb:///path`` or ``http://host:8123/db``.
AGENTLEDGER_STORE: Final = "AGENTLEDGER_STORE"
#: Address and port that ``agentledger serve`` binds.
AGENTLEDGER_HOST: Final = "AGENTLEDGER_HOST"
AGENTLEDGER_PORT: Final = "AGENTLEDGER_PORT"
#: Path of a JSON file mapping model names to tiers, read by the collector.
AGENTLEDGER_TIER_MAP: Final = "AGENTLEDGER_TIER_MAP"
#: Path of a TOML price file for private models and exact aliases.
AGENTLEDGER_PRICE_FILE: Final = "AGENTLEDGER_PRICE_FILE"
#: Path of a JSON file overriding the workflow and step rules of foreign spans
#: (``docs/dialects.md``), read by the collector.
AGENTLEDGER_DIALECT_RULES: Final = "AGENTLEDGER_DIALECT_RULES"
#: ClickHouse cluster name (collector, ``agentledger schema``); unset means a single node.
AGENTLEDGER_CLUSTER: Final = "AGENTLEDGER_CLUSTER"
#: Sharding keys on a cluster: ``EXPR`` for every table and/or ``TABLE=EXPR``, ``;``-separated.
AGENTLEDGER_SHARD_KEY: Final = "AGENTLEDGER_SHARD_KEY"
#: URL of a ClickHouse server for the integration tests; they run on chDB when unset.
AGENTLEDGER_TEST_CLICKHOUSE_URL: Final = "AGENTLEDGER_TEST_CLICKHOUSE_URL"
#: Largest OTLP request body in bytes, before and after decompression (collector).
AGENTLEDGER_MAX_BODY_BYTES: Final = "AGENTLEDGER_MAX_BODY_BYTES"
#: Directory of the ingest spool; by default ``<store dir>.spool`` beside a chDB store.
AGENTLEDGER_SPOOL_DIR: Final = "AGENTLEDGER_SPOOL_DIR"
#: Bytes the spool may hold while the store is unreachable; past it ingest answers 503.
AGENTLEDGER_SPOOL_MAX_BYTES: Final = "AGENTLEDGER_SPOOL_MAX_BYTES"
#: TOML file of API keys (collector); without keys only a loopback address may be served.
AGENTLEDGER_KEYS_FILE: Final = "AGENTLEDGER_KEYS_FILE"
#: Secret signing dashboard session cookies (collector); random per process when unset.
AGENTLEDGER_SESSION_SECRET: Final = "AGENTLEDGER_SESSION_SECRET"
#: API key that client commands and the SDK send as ``Authorization: Bearer``.
AGENTLEDGER_API_KEY: Final = "AGENTLEDGER_API_KEY"
#: TOML file of alert rules and notification channels (collector, ``agentledger alerts``).
AGENTLEDGER_ALERTS_FILE: Final = "AGENTLEDGER_ALERTS_FILE"
#: ``true`` or ``false``: whether this collector evaluates the alert rules. When several
#: collectors share one store, set it true on exactly one of them.
AGENTLEDGER_EVALUATE_ALERTS: Final = "AGENTLEDGER_EVALUATE_ALERTS"
#: Seconds between the collector's background passes over new spans that keep the rollups
#: (the per-run tables the API and dashboard read) up to date; default 5.
AGENTLEDGER_ROLLUP_INTERVAL_SECONDS: Final = "AGENTLEDGER_ROLLUP_INTERVAL_SECONDS"
#: Processes that decode and map OTLP requests for the collector; by default one per core, at
#: most four; 0 decodes in the serving process.
AGENTLEDGER_INGEST_WORKERS: Final = "AGENTLEDGER_INGEST_WORKERS"

DEFAULT_ENDPOINT: Final = "http://127.0.0.1:4318"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 4318
#: The default store is a chDB directory of this name in the working directory.
DEFAULT_STORE_DIR: Final = "agentledger-data"
