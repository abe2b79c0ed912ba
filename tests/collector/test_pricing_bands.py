"""Tiered prices are priced from cached per-band rates, equal to genai-prices at the edges."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from agentledger.collector import pricing
from agentledger.collector.pricing import Pricer

# claude-sonnet-4-5 costs more per token once a call's input passes 200,000 tokens.
MOMENT = datetime(2025, 11, 1, tzinfo=UTC)
START_NS = int(MOMENT.timestamp()) * 1_000_000_000


@pytest.mark.parametrize("input_tokens", [1, 199_999, 200_000, 200_001, 3_000_000])
def test_each_side_of_a_tier_start_prices_as_genai_prices(input_tokens: int) -> None:
    pricer = Pricer()
    counts = {
        "input_tokens": input_tokens,
        "output_tokens": 777,
        "cache_read_tokens": input_tokens // 3,
        "cache_write_tokens": input_tokens // 7,
    }

    ours = [
        pricer.price("claude-sonnet-4-5", "anthropic", start_ns=START_NS, **counts)
        for _ in range(2)
    ]

    reference = calc_price(
        Usage(**counts),
        model_ref="claude-sonnet-4-5",
        provider_id="anthropic",
        genai_request_timestamp=MOMENT,
    ).total_price
    assert ours == [reference.quantize(Decimal("1e-12"))] * 2


def test_a_tiered_model_is_priced_from_cached_rates_not_calc_price(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pricer = Pricer()
    first = pricer.price(
        "claude-sonnet-4-5", "anthropic", input_tokens=1_000, output_tokens=10, start_ns=START_NS
    )
    calls = []
    monkeypatch.setattr(pricing, "_calc_price", lambda *args: calls.append(args))

    again = pricer.price(
        "claude-sonnet-4-5", "anthropic", input_tokens=1_000, output_tokens=10, start_ns=START_NS
    )

    # $3 per million input tokens and $15 per million output tokens below the tier.
    assert first == again == Decimal("0.003150000000")
    assert calls == []
