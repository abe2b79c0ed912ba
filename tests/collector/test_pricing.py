"""Costs at ingest: a reported cost wins, genai-prices prices the rest, unknown stays unknown.

Expected prices are worked out by hand from the providers' published per-million-token
rates: gpt-4o-mini $0.15 input, $0.075 cache read, $0.60 output; claude-3-5-sonnet $3.00
input, $0.30 cache read, $3.75 cache write, $15.00 output.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from agentledger.collector.pricing import Pricer

JAN_2025_NS = 1_735_689_600_000_000_000


def test_a_reported_cost_wins_over_the_price() -> None:
    cost = Pricer().cost(
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=1_000,
        output_tokens=100,
        reported_usd=Decimal("0.5"),
        start_ns=JAN_2025_NS,
    )

    assert cost == (Decimal("0.5"), "reported")


def test_a_reported_cost_counts_even_for_an_unknown_model() -> None:
    cost = Pricer().cost(
        model="m-unknown",
        provider="",
        input_tokens=None,
        output_tokens=None,
        reported_usd=Decimal("0.002"),
    )

    assert cost == (Decimal("0.002"), "reported")


def test_a_known_model_is_priced_with_cache_reads_inside_input() -> None:
    # 1,000 input of which 200 cache reads: 800 * 0.15 + 200 * 0.075 + 100 * 0.60 = 195 µ$
    cost = Pricer().cost(
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=1_000,
        output_tokens=100,
        cache_read_tokens=200,
        start_ns=JAN_2025_NS,
    )

    assert cost == (Decimal("0.000195"), "genai-prices")


def test_cache_writes_are_part_of_input_too() -> None:
    # 10,000 input = 7,000 uncached + 2,000 cache reads + 1,000 cache writes; 500 output:
    # 7,000 * 3 + 2,000 * 0.30 + 1,000 * 3.75 + 500 * 15 = 32,850 µ$
    price = Pricer().price(
        "claude-3-5-sonnet-20241022",
        "anthropic",
        input_tokens=10_000,
        output_tokens=500,
        cache_read_tokens=2_000,
        cache_write_tokens=1_000,
        start_ns=JAN_2025_NS,
    )

    assert price == Decimal("0.032850")


def test_an_otel_provider_name_that_genai_prices_lacks_still_prices_by_model() -> None:
    price = Pricer().price(
        "gpt-4o-mini",
        "azure.ai.openai",
        input_tokens=1_000_000,
        output_tokens=0,
        start_ns=JAN_2025_NS,
    )

    assert price == Decimal("0.15")


def test_an_unknown_model_is_unknown_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    pricer = Pricer()
    caplog.set_level(logging.WARNING, logger="agentledger.collector.pricing")

    first = pricer.cost(model="m-unknown", provider="acme", input_tokens=10, output_tokens=5)
    second = pricer.cost(model="m-unknown", provider="acme", input_tokens=20, output_tokens=5)

    assert first == second == (None, "")
    warnings = [r for r in caplog.records if "m-unknown" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize("model", ["", "gpt-4o-mini"])
def test_a_call_without_tokens_or_model_has_no_cost(model: str) -> None:
    cost = Pricer().cost(model=model, provider="openai", input_tokens=None, output_tokens=None)

    assert cost == (None, "")


def test_inconsistent_usage_is_unknown_rather_than_an_error() -> None:
    # cache reads cannot exceed the input that contains them
    price = Pricer().price(
        "gpt-4o-mini",
        "openai",
        input_tokens=10,
        output_tokens=1,
        cache_read_tokens=50,
        start_ns=JAN_2025_NS,
    )

    assert price is None


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("model", "provider", "moment"),
    [
        ("gpt-4o-mini", "openai", datetime(2025, 1, 1, tzinfo=UTC)),
        ("claude-3-5-sonnet-20241022", "anthropic", datetime(2025, 1, 1, tzinfo=UTC)),
        # prices with a context-length tier
        ("claude-sonnet-4-5", "anthropic", datetime(2025, 11, 1, tzinfo=UTC)),
        # a price change on a date, and off-peak hours
        ("o3", "openai", datetime(2025, 6, 1, tzinfo=UTC)),
        ("o3", "openai", datetime(2025, 7, 1, tzinfo=UTC)),
        ("deepseek-chat", "deepseek", datetime(2025, 6, 1, 2, 0, tzinfo=UTC)),
        ("deepseek-chat", "deepseek", datetime(2025, 6, 1, 20, 0, tzinfo=UTC)),
    ],
)
@pytest.mark.parametrize(
    "counts",
    [(1_000, 100, 0, 0), (250_000, 3_000, 40_000, 10_000), (7, 1, 3, 4), (0, 0, 0, 0)],
)
def test_prices_equal_genai_prices_calc_price(
    model: str, provider: str, moment: datetime, counts: tuple[int, int, int, int]
) -> None:
    input_tokens, output_tokens, cache_read, cache_write = counts
    pricer = Pricer()

    # twice: the first call derives and caches the per-token rates, the second uses them
    prices = [
        pricer.price(
            model,
            provider,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            start_ns=_ns(moment),
        )
        for _ in range(2)
    ]

    usage = Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
    reference = calc_price(
        usage, model_ref=model, provider_id=provider, genai_request_timestamp=moment
    ).total_price
    assert prices == [reference.quantize(Decimal("1e-12"))] * 2
