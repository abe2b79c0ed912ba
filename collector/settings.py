"""Settings of the collector, read from arguments or the environment, and the tier map file.

Every environment variable is named in ``agentledger.schemas.environment``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agentledger.schemas import environment as env


ENV_PREFIX = "AGENTLEDGER_"


class SettingsError(ValueError):
    """A setting or a file it names is invalid."""


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
    # TODO: read the price file (issue 3); until then the server warns that it is ignored.
    price_file: Path | None = None

    def tiers(self) -> dict[str, str]:
        """The model -> tier map read from :attr:`tier_map`, or an empty map."""
        if self.tier_map is None:
            return {}
        return load_tier_map(self.tier_map)


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
