"""The cost of a call: the reported cost when there is one, else the price from genai-prices.

Token counts arrive in the OpenTelemetry convention: input includes cache reads and cache
writes, output includes reasoning. genai-prices uses the same convention for input:
``genai_prices.decompose.compute_leaf_values`` prices ``input_tokens`` minus its descendant
units ``cache_read_tokens`` and ``cache_write_tokens`` at the input rate, and raises when a
part exceeds the whole (read in genai-prices 0.2.3). So the counts are passed unchanged.

Only the price data bundled with genai-prices is used: the collector never fetches prices
from the network at run time. A user price file (``collector/price_file.py``) prices private
models and resolves exact aliases; its entries win over genai-prices for the same name.
"""

from __future__ import annotations

import bisect
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from genai_prices import Usage
from genai_prices.data_snapshot import get_snapshot
from genai_prices.types import TieredPrices

from agentledger.collector.price_file import PriceFile

logger = logging.getLogger(__name__)

SOURCE_REPORTED: Final = "reported"
SOURCE_GENAI_PRICES: Final = "genai-prices"
SOURCE_PRICE_FILE: Final = "price-file"
SOURCE_UNKNOWN: Final = ""

# cost_usd is Decimal(18, 12) in the store.
_COST_QUANTUM = Decimal("1e-12")


class Pricer:
    """Prices calls with genai-prices, caching the model lookup per (model, provider).

    Safe to share between threads: the caches only ever gain entries, and a race at worst
    repeats one lookup or one log line.
    """

    def __init__(self, price_file: PriceFile | None = None) -> None:
        self._price_file = price_file
        self._models: dict[tuple[str, str], tuple[Any, Any] | None] = {}
        self._rates: dict[int, tuple[Any, _Rates | None]] = {}
        self._logged: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def cost(
        self,
        *,
        model: str,
        provider: str,
        input_tokens: int | None,
        output_tokens: int | None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reported_usd: Decimal | None = None,
        start_ns: int = 0,
    ) -> tuple[Decimal | None, str]:
        """The cost of one call in USD and where it came from.

        A reported cost wins. Otherwise the call is priced when it has token counts and its
        model (or the model its exact alias names) is in the price file or known to
        genai-prices, in that order; else the cost is ``None`` (unknown, never 0) and the
        source is ``''``.
        """
        if reported_usd is not None:
            return reported_usd, SOURCE_REPORTED
        if not model or (input_tokens is None and output_tokens is None):
            return None, SOURCE_UNKNOWN
        if self._price_file is not None:
            model, rates = self._price_file.resolve(model)
            if rates is not None:
                try:
                    file_price = rates.price(
                        input_tokens=input_tokens or 0,
                        output_tokens=output_tokens or 0,
                        cache_read_tokens=cache_read_tokens or 0,
                        cache_write_tokens=cache_write_tokens or 0,
                    )
                except ValueError as exc:
                    self._log_once(model, provider, f"price file cannot price it ({exc})")
                    return None, SOURCE_UNKNOWN
                return file_price.quantize(_COST_QUANTUM), SOURCE_PRICE_FILE
        price = self.price(
            model,
            provider,
            input_tokens=input_tokens or 0,
            output_tokens=output_tokens or 0,
            cache_read_tokens=cache_read_tokens or 0,
            cache_write_tokens=cache_write_tokens or 0,
            start_ns=start_ns,
        )
        if price is None:
            return None, SOURCE_UNKNOWN
        return price, SOURCE_GENAI_PRICES

    def price(
        self,
        model: str,
        provider: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        start_ns: int = 0,
    ) -> Decimal | None:
        """The genai-prices price of a call at its start time, or None when unknown."""
        found = self._lookup(model, provider)
        if found is None:
            return None
        if cache_read_tokens + cache_write_tokens > input_tokens:
            self._log_once(model, provider, "cache tokens exceed the input tokens that hold them")
            return None
        price_provider, model_info = found
        # A span without a start time is priced at today's prices, as genai-prices does.
        at = datetime.fromtimestamp(start_ns / 1e9, UTC) if start_ns else datetime.now(UTC)
        counts = (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)

        rates = self._rates_for(model_info, price_provider, at)
        try:
            if rates is not None:
                return rates.price(*counts).quantize(_COST_QUANTUM)
            return _calc_price(model_info, price_provider, at, *counts).quantize(_COST_QUANTUM)
        except ValueError as exc:  # usage that genai-prices refuses to price
            self._log_once(model, provider, f"usage cannot be priced ({exc})")
            return None

    def _rates_for(self, model_info: Any, price_provider: Any, at: datetime) -> _Rates | None:
        # genai_prices.calc_price re-resolves its unit registry on every call (about 300 µs),
        # too slow for the ingest path; for prices linear in tokens (within each tier's input
        # band) the per-token rates are derived once per price period and checked against
        # calc_price before use.
        model_price = model_info.get_prices(at)
        key = id(model_price)
        cached = self._rates.get(key)
        if cached is not None and cached[0] is model_price:
            return cached[1]
        rates = _Rates.derive(model_info, price_provider, at, model_price)
        with self._lock:
            # The ModelPrice is kept in the entry so that its id is never reused.
            self._rates[key] = (model_price, rates)
        return rates

    def _lookup(self, model: str, provider: str) -> tuple[Any, Any] | None:
        key = (model, provider)
        try:
            return self._models[key]
        except KeyError:
            pass

        snapshot = get_snapshot()
        found: tuple[Any, Any] | None = None
        # OpenTelemetry provider names ("gcp.vertex_ai", "x_ai") are not all genai-prices
        # ids, so a failed lookup with the provider is retried by the model name alone.
        for provider_id in (provider, None) if provider else (None,):
            try:
                found = snapshot.find_provider_model(model, None, provider_id, None)
                break
            except LookupError:
                continue
        with self._lock:
            self._models[key] = found
        if found is None:
            self._log_once(model, provider, "no price known; its cost is stored as unknown")
        return found

    def _log_once(self, model: str, provider: str, reason: str) -> None:
        key = (model, provider)
        with self._lock:
            if key in self._logged:
                return
            self._logged.add(key)
        logger.warning("unpriced model: model=%r provider=%r: %s", model, provider, reason)


_MTOK: Final = 1_000_000


def _calc_price(
    model_info: Any,
    price_provider: Any,
    at: datetime,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
) -> Decimal:
    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
    )
    result = model_info.calc_price(usage, price_provider, genai_request_timestamp=at)
    return Decimal(result.total_price)


@dataclass(frozen=True, slots=True)
class _Band:
    """USD per million tokens of each kind, for calls whose input is in one price band."""

    uncached_input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal

    def price(
        self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
    ) -> Decimal:
        uncached = input_tokens - cache_read - cache_write
        total = (
            uncached * self.uncached_input
            + cache_read * self.cache_read
            + cache_write * self.cache_write
            + output_tokens * self.output
        )
        return total / _MTOK


@dataclass(frozen=True, slots=True)
class _Rates:
    """Per-token rates of a model whose price is linear in tokens within input-size bands.

    genai-prices' tiered prices switch every token to the tier's rate once the call's input
    tokens pass the tier's start (a cliff, not marginal), so within each band between two
    starts the price is linear and one set of rates per band prices it exactly.
    """

    #: Band i holds calls with ``starts[i-1] < input_tokens <= starts[i]``.
    starts: tuple[int, ...]
    bands: tuple[_Band, ...]

    def price(
        self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int
    ) -> Decimal:
        band = bisect.bisect_left(self.starts, input_tokens)
        return self.bands[band].price(input_tokens, output_tokens, cache_read, cache_write)

    @classmethod
    def derive(
        cls, model_info: Any, price_provider: Any, at: datetime, model_price: Any
    ) -> _Rates | None:
        """Rates measured with calc_price, or None when the price is not linear in tokens."""
        starts = sorted(
            {
                tier.start
                for value in vars(model_price).values()
                if isinstance(value, TieredPrices)
                for tier in value.tiers
            }
        )

        def measured(*counts: int) -> Decimal:
            return _calc_price(model_info, price_provider, at, *counts)

        bands = []
        try:
            if measured(0, 0, 0, 0) != 0:  # a price per request, not per token
                return None
            for index, low in enumerate([0, *starts]):
                high = starts[index] if index < len(starts) else None
                # Measured with n input tokens inside the band; the rates are Decimal
                # quotients, exact for prices with few digits, and checked by a probe.
                n = low + 1
                base = measured(n, 0, 0, 0)
                band = _Band(
                    uncached_input=base * _MTOK / n,
                    output=measured(n, _MTOK, 0, 0) - base,
                    cache_read=measured(n, 0, n, 0) * _MTOK / n,
                    cache_write=measured(n, 0, 0, n) * _MTOK / n,
                )
                top = high if high is not None else low + 2_469_134
                probe_input = max(n, (low + top) // 2)
                probe = (probe_input, 54_321, probe_input // 5, probe_input // 9)
                expected = measured(*probe).quantize(_COST_QUANTUM)
                if band.price(*probe).quantize(_COST_QUANTUM) != expected:
                    return None
                bands.append(band)
        except (ValueError, ArithmeticError):
            return None
        return cls(tuple(starts), tuple(bands))
