"""Collector settings: environment variable names, precedence, and the tier map file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentledger.collector.settings import CollectorSettings, SettingsError, load_tier_map


def test_settings_read_the_variables_named_in_schemas_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AGENTLEDGER_HOST", "0.0.0.0")
    monkeypatch.setenv("AGENTLEDGER_PORT", "9999")
    monkeypatch.setenv("AGENTLEDGER_STORE", "chdb:///data/x")
    monkeypatch.setenv("AGENTLEDGER_TIER_MAP", str(tmp_path / "tiers.json"))
    monkeypatch.setenv("AGENTLEDGER_PRICE_FILE", str(tmp_path / "prices.toml"))
    # generic names must not leak in
    monkeypatch.setenv("HOST", "evil")
    monkeypatch.setenv("PORT", "1")

    settings = CollectorSettings()

    assert (settings.host, settings.port, settings.store) == ("0.0.0.0", 9999, "chdb:///data/x")
    assert settings.tier_map == tmp_path / "tiers.json"
    assert settings.price_file == tmp_path / "prices.toml"


def test_keyword_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLEDGER_PORT", "9999")

    assert CollectorSettings(port=4000).port == 4000


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HOST", "PORT", "STORE", "TIER_MAP", "PRICE_FILE"):
        monkeypatch.delenv(f"AGENTLEDGER_{name}", raising=False)

    settings = CollectorSettings()

    assert (settings.host, settings.port, settings.store) == ("127.0.0.1", 4318, None)
    assert settings.tiers() == {}


def test_a_tier_map_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "tiers.json"
    path.write_text('{"gpt-4o-mini": "small", "gpt-4o": "frontier"}')

    assert CollectorSettings(tier_map=path).tiers() == {
        "gpt-4o-mini": "small",
        "gpt-4o": "frontier",
    }


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[1, 2]", "must be a JSON object"),
        ('{"m": 3}', "tier of model 'm'"),
        ('{"m": ""}', "tier of model 'm'"),
        ("{nope", "not valid JSON"),
    ],
)
def test_a_bad_tier_map_names_the_problem(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "tiers.json"
    path.write_text(content)

    with pytest.raises(SettingsError, match=words):
        load_tier_map(path)


def test_a_missing_tier_map_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="missing.json"):
        load_tier_map(tmp_path / "missing.json")
