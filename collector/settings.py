"""Settings of the collector, read from arguments or the environment, and the tier map file.

Every environment variable is named in ``agentledger.schemas.environment``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentledger.collector.dialects import ContextRules
from agentledger.schemas import environment as env
from agentledger.schemas.cluster import ClusterLayout, ClusterSchemaError, parse_shard_keys

if TYPE_CHECKING:
    from agentledger.collector.price_file import PriceFile

ENV_PREFIX = "AGENTLEDGER_"


class SettingsError(ValueError):
    """A setting or a file it names is invalid."""


def _default_ingest_workers() -> int:
    from agentledger.collector.ingest_workers import default_workers

    return default_workers()


class CollectorSettings(BaseSettings):
    """How ``agentledger serve`` runs. Keyword arguments win over environment variables.

    Each field reads the variable ``AGENTLEDGER_<FIELD>``: ``AGENTLEDGER_HOST``,
    ``AGENTLEDGER_PORT``, ``AGENTLEDGER_STORE``, ``AGENTLEDGER_TIER_MAP`` and
    ``AGENTLEDGER_PRICE_FILE``, as ``agentledger.schemas.environment`` names them.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = env.DEFAULT_HOST
    port: int = Field(default=env.DEFAULT_PORT, ge=0, le=65535)
    #: ``chdb:///path``, a bare path, or ``http://host:8123``; None means ./agentledger-data.
    store: str | None = None
    #: JSON file mapping exact model names to tiers, e.g. ``{"gpt-4o-mini": "small"}``.
    tier_map: Path | None = None
    #: TOML price file for private models and exact aliases; see ``docs/pricing.md``.
    price_file: Path | None = None
    #: JSON file overriding the workflow and step rules of foreign spans (docs/dialects.md).
    dialect_rules: Path | None = None
    #: TOML file of alert rules and channels (``docs/alerts.md``); None: no alerts.
    alerts_file: Path | None = None
    #: Whether this process evaluates the alert rules: true on exactly one collector of a store.
    evaluate_alerts: bool = True
    #: Seconds between background passes that bring the rollups up to date with new spans
    #: (``agentledger.collector.rollups``); every read also catches up first.
    rollup_interval_seconds: float = Field(default=5.0, gt=0)
    #: Processes that decode and map OTLP requests (``agentledger.collector.ingest_workers``),
    #: by default one per core up to four; 0 decodes in threads of the serving process.
    ingest_workers: int = Field(default_factory=_default_ingest_workers, ge=0, le=64)
    #: Largest OTLP request body in bytes, before and after decompression.
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    #: Directory of the ingest spool; None means ``<store dir>.spool`` (``./agentledger-spool``
    #: for a ClickHouse server).
    spool_dir: Path | None = None
    #: Bytes the spool may hold while the store is unreachable; past it ingest answers 503.
    spool_max_bytes: int = Field(default=1024 * 1024 * 1024, ge=1)
    #: TOML file of API keys (see ``agentledger.collector.auth``); None leaves access open,
    #: which ``serve`` allows on a loopback address only.
    keys_file: Path | None = None
    #: Secret signing dashboard session cookies; random per process when unset.
    session_secret: str | None = Field(default=None, repr=False)
    #: ClickHouse cluster of an ``http://`` store; None means a single node (see deploy/).
    cluster: str | None = None
    #: Sharding keys on a cluster, as ``agentledger schema --shard-key`` takes them,
    #: ``;``-separated; None means the default key of each table.
    shard_key: str | None = None

    def cluster_layout(self) -> ClusterLayout | None:
        """The cluster form of the schema to apply, or None for a single node."""
        if not self.cluster:
            return None
        values = [part for part in (self.shard_key or "").split(";") if part.strip()]
        default, by_table = parse_shard_keys(values)
        try:
            return ClusterLayout(self.cluster, shard_key=default, shard_keys=by_table)
        except ClusterSchemaError as exc:
            raise SettingsError(str(exc)) from exc

    def tiers(self) -> dict[str, str]:
        """The model -> tier map read from :attr:`tier_map`, or an empty map."""
        if self.tier_map is None:
            return {}
        return load_tier_map(self.tier_map)

    def prices(self) -> PriceFile | None:
        """The price file read from :attr:`price_file`, or None without one."""
        if self.price_file is None:
            return None
        # Imported here: price_file imports SettingsError from this module.
        from agentledger.collector.price_file import load_price_file

        return load_price_file(self.price_file)

    def context_rules(self) -> ContextRules:
        """The foreign-span rules: defaults, overridden by :attr:`dialect_rules`."""
        if self.dialect_rules is None:
            return ContextRules()
        try:
            return ContextRules.from_file(self.dialect_rules)
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc


def load_tier_map(path: Path) -> dict[str, str]:
    """Read a JSON object mapping exact model names to tier names."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise SettingsError(f"tier map {str(path)!r} cannot be read: {exc}") from exc
    except ValueError as exc:
        raise SettingsError(f"tier map {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(
            f"tier map {str(path)!r} must be a JSON object of model -> tier, "
            f"got {type(data).__name__}"
        )
    for model, tier in data.items():
        if not isinstance(tier, str) or not tier:
            raise SettingsError(
                f"tier map {str(path)!r}: tier of model {model!r} must be a non-empty string, "
                f"got {tier!r}"
            )
    return dict(data)
