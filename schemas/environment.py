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

DEFAULT_ENDPOINT: Final = "http://127.0.0.1:4318"
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 4318
#: The default store is a chDB directory of this name in the working directory.
DEFAULT_STORE_DIR: Final = "agentledger-data"
