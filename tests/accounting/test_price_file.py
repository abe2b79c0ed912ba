"""The user price file: its format, its precedence over genai-prices, exact aliases only.

Rates are the issue's test price file (tests/accounting/conftest.py), USD per million tokens;
gpt-4o-mini's public rates (genai-prices) are $0.15 input, $0.075 cache read, $0.60 output.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from agentledger.collector.price_file import ModelRates, load_price_file
from agentledger.collector.pricing import Pricer
from agentledger.collector.settings import CollectorSettings, SettingsError
from tests.accounting.conftest import PRICE_FILE
from tests.conftest import free_port

JAN_2025_NS = 1_735_689_600_000_000_000


def _pricer(tmp_path: Path, extra: str = "") -> Pricer:
    path = tmp_path / "prices.toml"
    path.write_text(PRICE_FILE + extra, "utf-8")
    return Pricer(price_file=load_price_file(path))


def _cost(pricer: Pricer, model: str, *, provider: str = "", **tokens: int) -> object:
    return pricer.cost(
        model=model,
        provider=provider,
        input_tokens=tokens.get("input_tokens"),
        output_tokens=tokens.get("output_tokens"),
        cache_read_tokens=tokens.get("cache_read_tokens"),
        cache_write_tokens=tokens.get("cache_write_tokens"),
        start_ns=JAN_2025_NS,
    )


def test_the_file_is_read_into_exact_decimal_rates(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(PRICE_FILE, "utf-8")

    prices = load_price_file(path)

    assert prices.models == {
        "m-large": ModelRates(Decimal("3.00"), Decimal("15.00"), Decimal("0.30"), Decimal("3.75")),
        "m-small": ModelRates(Decimal("0.50"), Decimal("2.00"), Decimal("0.05"), None),
    }
    assert prices.aliases == {}


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        # 20,000 * 3.00 / 1M + 2,000 * 15.00 / 1M = 0.06 + 0.03
        ({"input_tokens": 20_000, "output_tokens": 2_000}, "0.09"),
        # Uncached 7,000 * 3.00 + reads 2,000 * 0.30 + writes 1,000 * 3.75 + 500 * 15.00,
        # per million: 0.021 + 0.0006 + 0.00375 + 0.0075 = 0.03285
        (
            {
                "input_tokens": 10_000,
                "output_tokens": 500,
                "cache_read_tokens": 2_000,
                "cache_write_tokens": 1_000,
            },
            "0.03285",
        ),
        # Output only: 1,000,000 * 15.00 / 1M
        ({"output_tokens": 1_000_000}, "15"),
    ],
)
def test_a_model_of_the_file_is_priced_from_it(
    tmp_path: Path, tokens: dict[str, int], expected: str
) -> None:
    assert _cost(_pricer(tmp_path), "m-large", **tokens) == (Decimal(expected), "price-file")


def test_the_file_wins_over_genai_prices_for_the_same_name(tmp_path: Path) -> None:
    own = '\n[models."gpt-4o-mini"]\ninput_mtok = 1.00\noutput_mtok = 1.00\n'

    cost = _cost(
        _pricer(tmp_path, own),
        "gpt-4o-mini",
        provider="openai",
        input_tokens=1_000,
        output_tokens=1_000,
    )

    # 1,000 * 1.00 / 1M + 1,000 * 1.00 / 1M, not genai-prices' 0.00015 + 0.0006
    assert cost == (Decimal("0.002"), "price-file")


def test_an_alias_names_a_model_of_genai_prices_or_of_the_file(tmp_path: Path) -> None:
    aliases = '\n[aliases]\n"prod-mini" = "gpt-4o-mini"\n"big-one" = "m-large"\n'
    pricer = _pricer(tmp_path, aliases)

    # gpt-4o-mini at genai-prices' rates: 800 * 0.15 + 200 * 0.075 + 100 * 0.60 = 195 µ$
    assert _cost(
        pricer,
        "prod-mini",
        provider="openai",
        input_tokens=1_000,
        output_tokens=100,
        cache_read_tokens=200,
    ) == (Decimal("0.000195"), "genai-prices")
    assert _cost(pricer, "big-one", input_tokens=20_000, output_tokens=2_000) == (
        Decimal("0.09"),
        "price-file",
    )


@pytest.mark.parametrize("model", ["prod-mini-v2", "PROD-MINI", "my-prod-mini", "m-large-v2"])
def test_names_match_exactly_never_by_substring_or_case(tmp_path: Path, model: str) -> None:
    pricer = _pricer(tmp_path, '\n[aliases]\n"prod-mini" = "gpt-4o-mini"\n')

    assert _cost(pricer, model, input_tokens=1_000, output_tokens=100) == (None, "")


def test_cache_parts_without_a_rate_leave_the_call_unpriced_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pricer = _pricer(tmp_path)

    with caplog.at_level(logging.WARNING, logger="agentledger.collector.pricing"):
        first = _cost(
            pricer, "m-small", input_tokens=1_000, output_tokens=100, cache_write_tokens=400
        )
        second = _cost(
            pricer, "m-small", input_tokens=900, output_tokens=10, cache_write_tokens=100
        )
    # Without writes m-small is priced: 1,000 * 0.50 / 1M + 100 * 2.00 / 1M = 0.0007
    plain = _cost(pricer, "m-small", input_tokens=1_000, output_tokens=100)

    assert first == second == (None, "")
    assert plain == (Decimal("0.0007"), "price-file")
    assert caplog.text.count("unpriced model: model='m-small'") == 1
    assert "cache_write_mtok" in caplog.text


def test_an_unknown_model_is_unpriced_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pricer = _pricer(tmp_path)

    with caplog.at_level(logging.WARNING, logger="agentledger.collector.pricing"):
        costs = [_cost(pricer, "m-unknown", input_tokens=n, output_tokens=100) for n in (1, 2, 3)]
        costs.append(_cost(pricer, "m-unknown", input_tokens=5, output_tokens=5))

    assert costs == [(None, "")] * 4
    assert caplog.text.count("unpriced model: model='m-unknown'") == 1


def test_a_reported_cost_wins_over_the_file(tmp_path: Path) -> None:
    cost = _pricer(tmp_path).cost(
        model="m-large",
        provider="",
        input_tokens=20_000,
        output_tokens=2_000,
        reported_usd=Decimal("0.5"),
    )

    assert cost == (Decimal("0.5"), "reported")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[models.m\ninput_mtok = 1", "is not valid TOML"),
        ("[prices.m]\ninput_mtok = 1\noutput_mtok = 1", "unknown section 'prices'"),
        ("[models.m]\ninput_mtok = 1\noutput_mtok = 1\ncache_mtok = 1", "unknown key 'cache_mtok'"),
        ("[models.m]\ninput_mtok = 1", "lacks 'output_mtok'"),
        ("[models.m]\ninput_mtok = -1.5\noutput_mtok = 1", r"must be a finite number >= 0"),
        ("[models.m]\ninput_mtok = '3'\noutput_mtok = 1", "must be a number of USD"),
        ("[models.m]\ninput_mtok = true\noutput_mtok = 1", "must be a number of USD"),
        ("[models.m]\ninput_mtok = nan\noutput_mtok = 1", r"must be a finite number >= 0"),
        ("models = 3", r"\[models\] must be a table"),
        ('[aliases]\n"a" = 3', "alias 'a' must name a model"),
        ('[aliases]\n"a" = "b"\n"b" = "c"', "alias 'a' points at alias 'b'"),
        (
            '[models.m]\ninput_mtok = 1\noutput_mtok = 1\n[aliases]\n"m" = "x"',
            "'m' is both a model and an alias",
        ),
    ],
)
def test_a_bad_file_is_refused_with_the_entry_and_value(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text, "utf-8")

    with pytest.raises(SettingsError, match=message):
        load_price_file(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot be read"):
        load_price_file(tmp_path / "nowhere.toml")


def test_the_setting_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(PRICE_FILE, "utf-8")
    monkeypatch.setenv("AGENTLEDGER_PRICE_FILE", str(path))

    prices = CollectorSettings().prices()

    assert prices is not None and set(prices.models) == {"m-large", "m-small"}
    monkeypatch.delenv("AGENTLEDGER_PRICE_FILE")
    assert CollectorSettings().prices() is None


def test_serve_refuses_to_start_with_a_bad_price_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text("[models.m]\ninput_mtok = 1\n", "utf-8")

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentledger.cli",
            "serve",
            "--port",
            str(free_port()),
            "--store",
            str(tmp_path / "store"),
        ],
        capture_output=True,
        check=False,
        timeout=120,
        env={**os.environ, "AGENTLEDGER_PRICE_FILE": str(path)},
    )

    assert done.returncode == 1
    assert b"collector not started" in done.stderr + done.stdout
    assert b"lacks 'output_mtok'" in done.stderr + done.stdout
