"""The user price file: prices of private and self-hosted models, and exact aliases.

A TOML file named by ``AGENTLEDGER_PRICE_FILE``; rates are USD per million tokens::

    [models."m-large"]
    input_mtok = 3.00          # required
    output_mtok = 15.00        # required
    cache_read_mtok = 0.30     # optional
    cache_write_mtok = 3.75    # optional

    [aliases]
    "prod-gpt4o" = "gpt-4o"    # exact model name -> a model of this file or of genai-prices

Names match exactly, case included: no prefix, substring or fuzzy matching. An entry of
this file wins over genai-prices for the same model name. Input counts cache reads and
cache writes (the OpenTelemetry convention), so the uncached part is priced at
``input_mtok`` and each cache part at its own rate. A call with cache reads or writes on a
model without that rate is not priced rather than priced at a guessed rate.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from agentledger.collector.settings import SettingsError

logger = logging.getLogger(__name__)

_MTOK: Final = Decimal(1_000_000)
_RATE_KEYS: Final = ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
_REQUIRED_RATES: Final = ("input_mtok", "output_mtok")
_SECTIONS: Final = ("models", "aliases")


@dataclass(frozen=True, slots=True)
class ModelRates:
    """USD per million tokens of one model; a cache rate is None when the file gives none."""

    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None

    def price(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> Decimal:
        """The price of one call in USD.

        Raises:
            ValueError: the cache parts exceed the input, or a cache part has no rate.
        """
        uncached = input_tokens - cache_read_tokens - cache_write_tokens
        if uncached < 0:
            raise ValueError(
                f"cache tokens ({cache_read_tokens} read + {cache_write_tokens} written) "
                f"exceed the input tokens {input_tokens} that hold them"
            )
        total = uncached * self.input_mtok + output_tokens * self.output_mtok
        for tokens, rate, name in (
            (cache_read_tokens, self.cache_read_mtok, "cache_read_mtok"),
            (cache_write_tokens, self.cache_write_mtok, "cache_write_mtok"),
        ):
            if tokens:
                if rate is None:
                    raise ValueError(f"{tokens} tokens need {name}, which the price file lacks")
                total += tokens * rate
        return total / _MTOK


@dataclass(frozen=True, slots=True)
class PriceFile:
    """The parsed price file: rates by exact model name, and aliases to other model names."""

    models: Mapping[str, ModelRates]
    aliases: Mapping[str, str]

    def resolve(self, model: str) -> tuple[str, ModelRates | None]:
        """The model a name stands for (itself unless an alias) and its rates in this file."""
        rates = self.models.get(model)
        if rates is not None:
            return model, rates
        target = self.aliases.get(model, model)
        return target, self.models.get(target)


def load_price_file(path: Path) -> PriceFile:
    """Read and check a price file; errors name the file, the entry and the value."""
    where = str(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"), parse_float=Decimal)
    except OSError as exc:
        raise SettingsError(f"price file {where!r} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"price file {where!r} is not valid TOML: {exc}") from exc
    prices = parse_price_file(data, where)
    logger.info(
        "price file read: path=%s models=%d aliases=%d",
        where,
        len(prices.models),
        len(prices.aliases),
    )
    return prices


def parse_price_file(data: Mapping[str, Any], where: str = "<price file>") -> PriceFile:
    """Check the decoded TOML of a price file."""
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise SettingsError(
            f"price file {where!r}: unknown section {unknown[0]!r}; accepted: {list(_SECTIONS)}"
        )
    models = {
        name: _rates(where, name, entry) for name, entry in _table(data, "models", where).items()
    }

    aliases: dict[str, str] = {}
    for alias, target in _table(data, "aliases", where).items():
        if not isinstance(target, str) or not target:
            raise SettingsError(
                f"price file {where!r}: alias {alias!r} must name a model, got {target!r}"
            )
        if alias in models:
            raise SettingsError(
                f"price file {where!r}: {alias!r} is both a model and an alias; keep one"
            )
        aliases[alias] = target
    # One step only: an alias of an alias would make a name's price depend on file order.
    for alias, target in aliases.items():
        if target in aliases:
            raise SettingsError(
                f"price file {where!r}: alias {alias!r} points at alias {target!r}; "
                "an alias must name a model"
            )
    return PriceFile(models=models, aliases=aliases)


def _table(data: Mapping[str, Any], section: str, where: str) -> Mapping[str, Any]:
    table = data.get(section, {})
    if not isinstance(table, Mapping):
        raise SettingsError(
            f"price file {where!r}: [{section}] must be a table, got {type(table).__name__}"
        )
    return table


def _rates(where: str, model: str, entry: object) -> ModelRates:
    if not isinstance(entry, Mapping):
        raise SettingsError(
            f"price file {where!r}: models.{model!r} must be a table of rates, got {entry!r}"
        )
    unknown = sorted(set(entry) - set(_RATE_KEYS))
    if unknown:
        raise SettingsError(
            f"price file {where!r}: models.{model!r} has unknown key {unknown[0]!r}; "
            f"accepted: {list(_RATE_KEYS)}"
        )
    rates: dict[str, Decimal] = {}
    for key, value in entry.items():
        # TOML integers arrive as int, floats as Decimal (parse_float); bools are refused.
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise SettingsError(
                f"price file {where!r}: models.{model!r}.{key} must be a number of USD per "
                f"million tokens, got {value!r}"
            )
        amount = Decimal(value)
        if not amount.is_finite() or amount < 0:
            raise SettingsError(
                f"price file {where!r}: models.{model!r}.{key} must be a finite number >= 0, "
                f"got {value!r}"
            )
        rates[key] = amount
    missing = [key for key in _REQUIRED_RATES if key not in rates]
    if missing:
        raise SettingsError(f"price file {where!r}: models.{model!r} lacks {missing[0]!r}")
    return ModelRates(**rates)
