"""The issue's test price file and tier map, and a collector that reads them."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.collector.otlp_payloads import ResourceSpec, json_request
from tests.conftest import Collector, start_collector

# USD per million tokens. m-small has no cache-write rate; m-unknown is in no price list.
PRICE_FILE = """\
[models.m-large]
input_mtok = 3.00
cache_read_mtok = 0.30
cache_write_mtok = 3.75
output_mtok = 15.00

[models.m-small]
input_mtok = 0.50
cache_read_mtok = 0.05
output_mtok = 2.00
"""
TIER_MAP = {"m-large": "frontier", "m-small": "small"}


def write_settings(directory: Path) -> dict[str, str]:
    """Write the price file and the tier map into ``directory``; the env that names them."""
    prices = directory / "prices.toml"
    prices.write_text(PRICE_FILE, "utf-8")
    tiers = directory / "tiers.json"
    tiers.write_text(json.dumps(TIER_MAP), "utf-8")
    return {"AGENTLEDGER_PRICE_FILE": str(prices), "AGENTLEDGER_TIER_MAP": str(tiers)}


@pytest.fixture(scope="module")
def priced_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector with the test price file and tier map, shared by one module."""
    base = tmp_path_factory.mktemp("accounting")
    running = start_collector(base / "store", base / "serve.log", env=write_settings(base))
    yield running
    running.stop()


def post_spans(collector: Collector, resources: list[ResourceSpec]) -> None:
    response = httpx.post(
        collector.url + "/v1/traces",
        content=json_request(resources),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert "partialSuccess" not in response.json(), response.text


def _refuse(constant: str) -> Any:
    raise AssertionError(f"the answer holds {constant}, which JSON does not allow")


def strict_json(response: httpx.Response) -> Any:
    """The body as JSON, money as Decimal; fails on NaN or Infinity, and on a non-200."""
    assert response.status_code == 200, response.text
    data = json.loads(response.text, parse_float=Decimal, parse_constant=_refuse)
    _check_finite(data)
    return data


def _check_finite(value: Any) -> None:
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, dict):
        for item in value.values():
            _check_finite(item)
    elif isinstance(value, list):
        for item in value:
            _check_finite(item)


def metrics(collector: Collector, **params: object) -> list[dict[str, Any]]:
    rows = strict_json(collector.get("/api/v1/metrics", **params))
    assert isinstance(rows, list)
    return rows
