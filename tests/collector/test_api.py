"""The query API over a chDB store: parameters, errors, and JSON without NaN."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentledger.collector.api import api_router, encode_json, parse_group_by
from agentledger.collector.queries import StoreReader
from agentledger.collector.store import Store
from tests.collector.spanrows import insert_outcome, insert_spans, open_store, span


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    for store in open_store(tmp_path_factory.mktemp("api")):
        _fill(store)
        app = FastAPI()
        app.include_router(api_router(StoreReader(store)))
        with TestClient(app) as test_client:
            yield test_client


def _fill(store: Store) -> None:
    # r1 (workflow "support", correct): plan on small, rejected, then on frontier.
    # r2 (workflow "support", incorrect): one unpriced call outside any step.
    # r3 (workflow "triage", no verdict): no spans but its run span.
    insert_spans(
        store,
        span("run1", kind="run", workflow="support"),
        span(
            "a1",
            kind="step",
            parent_span_id="run1",
            step_name="plan",
            step_id="p",
            attempt=1,
            tier="small",
            attempt_accepted=False,
        ),
        span(
            "c1",
            parent_span_id="a1",
            step_name="plan",
            step_id="p",
            attempt=1,
            tier="small",
            model="m-small",
            input_tokens=1_000,
            output_tokens=100,
            cost_usd="0.0007",
        ),
        span(
            "a2",
            kind="step",
            parent_span_id="run1",
            step_name="plan",
            step_id="p",
            attempt=2,
            tier="frontier",
            start_time=2,
        ),
        span(
            "c2",
            parent_span_id="a2",
            step_name="plan",
            step_id="p",
            attempt=2,
            tier="frontier",
            model="m-large",
            input_tokens=20_000,
            output_tokens=2_000,
            cost_usd="0.09",
            start_time=2,
        ),
        span("run2", kind="run", trace_id="t2", run_id="r2", workflow="support", start_time=86_400),
        span(
            "u",
            trace_id="t2",
            run_id="r2",
            parent_span_id="run2",
            model="m-unknown",
            input_tokens=500,
            output_tokens=50,
            start_time=86_400,
        ),
        span("run3", kind="run", trace_id="t3", run_id="r3", workflow="triage", start_time=100),
    )
    insert_outcome(store, "r1", "correct")
    insert_outcome(store, "r2", "incorrect")


def _strict_json(response: Any) -> Any:
    """Parse a body, failing on NaN or Infinity and keeping numbers exact."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant!r} in the body")

    return json.loads(response.text, parse_constant=refuse, parse_float=Decimal)


def test_metrics_by_workflow(client: TestClient) -> None:
    response = client.get("/api/v1/metrics", params={"group_by": "workflow"})
    assert response.status_code == 200
    rows = {row["workflow"]: row for row in _strict_json(response)}
    support, triage = rows["support"], rows["triage"]
    assert (support["runs"], support["known_runs"], support["correct_runs"]) == (2, 2, 1)
    # 0.0007 + 0.09 priced; the m-unknown call is not.
    assert support["cost_usd"] == Decimal("0.0907")
    assert (support["unpriced_calls"], support["cost_complete"]) == (1, False)
    assert support["cost_per_correct_outcome_usd"] == Decimal("0.0907")
    assert (triage["runs"], triage["calls"], triage["cost_usd"]) == (1, 0, 0)
    # No verdict, no tokens: every ratio is a JSON null.
    for name in (
        "cost_per_correct_outcome_usd",
        "success_rate",
        "reingestion_overhead",
        "retry_amplification",
        "cost_retry_amplification",
    ):
        assert triage[name] is None, name
    assert triage["outcome_coverage"] == 0


def test_money_is_a_json_number(client: TestClient) -> None:
    response = client.get("/api/v1/metrics", params={"group_by": "model", "model": "m-small"})
    assert '"cost_usd":0.0007' in response.text
    (row,) = _strict_json(response)
    assert row["model"] == "m-small"


@pytest.mark.parametrize(
    "params",
    [
        {"group_by": "step,tier"},
        {"group_by": ["step", "tier"]},
        {"group_by": ["step", "tier,step"]},
    ],
)
def test_group_by_comma_separated_or_repeated(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/api/v1/metrics", params=params)
    assert response.status_code == 200
    rows = {(row["step"], row["tier"]): row for row in _strict_json(response)}
    assert set(rows) == {("plan", "small"), ("plan", "frontier"), ("", "")}
    small = rows[("plan", "small")]
    # Nothing accepted on small: no denominator, so null rather than a division by zero.
    assert small["retry_amplification"] is None
    assert small["cost_per_correct_outcome_usd"] == Decimal("0.0007")
    assert rows[("plan", "frontier")]["retry_amplification"] == 1


def test_window_and_day(client: TestClient) -> None:
    response = client.get(
        "/api/v1/metrics",
        params={"group_by": "day", "since": "2026-03-03T00:00:00Z", "until": "2026-03-04"},
    )
    assert response.status_code == 200
    (row,) = _strict_json(response)
    assert (row["day"], row["runs"], row["input_tokens"]) == ("2026-03-03", 1, 500)
    assert row["cost_usd"] is None  # its only call is unpriced


@pytest.mark.parametrize(
    ("params", "status", "name", "value"),
    [
        ({"group_by": "workflow,colour"}, 400, "group_by", "workflow,colour"),
        ({"since": "yesterday"}, 422, "since", "yesterday"),
        ({"since": "2026-03-04", "until": "2026-03-03"}, 400, "until", "2026-03-03T00:00:00"),
    ],
)
def test_bad_metrics_parameters_are_named(
    client: TestClient, params: dict[str, str], status: int, name: str, value: str
) -> None:
    response = client.get("/api/v1/metrics", params=params)
    assert response.status_code == status
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", name]
    assert error["input"].startswith(value)


@pytest.mark.parametrize(("name", "value"), [("limit", "0"), ("limit", "5000"), ("offset", "-1")])
def test_bad_paging_is_named(client: TestClient, name: str, value: str) -> None:
    response = client.get("/api/v1/runs", params={name: value})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["query", name], value)


def test_runs_list_and_detail(client: TestClient) -> None:
    page = _strict_json(client.get("/api/v1/runs", params={"workflow": "support", "limit": 1}))
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 0)
    (newest,) = page["runs"]
    assert (newest["run_id"], newest["outcome"], newest["cost_usd"]) == ("r2", "incorrect", None)
    assert newest["start_time"] == "2026-03-03T09:00:00+00:00"

    detail = _strict_json(client.get("/api/v1/runs/r1"))
    assert (detail["workflow"], detail["outcome"], detail["calls"]) == ("support", "correct", 2)
    assert [(a["attempt"], a["tier"], a["accepted"]) for a in detail["attempts"]] == [
        (1, "small", False),
        (2, "frontier", True),
    ]
    assert detail["attempts"][1]["calls"][0]["cost_usd"] == Decimal("0.09")


def test_unknown_run_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/runs/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "run 'nope' not found in project 'default'"}


def test_other_projects_are_empty(client: TestClient) -> None:
    (row,) = _strict_json(client.get("/api/v1/metrics", params={"project": "elsewhere"}))
    assert (row["runs"], row["cost_usd"], row["outcome_coverage"]) == (0, 0, None)
    assert client.get("/api/v1/runs/r1", params={"project": "elsewhere"}).status_code == 404


def test_parse_group_by_keeps_first_order() -> None:
    assert parse_group_by(["tier, step", "tier", ""]) == ["tier", "step"]
    with pytest.raises(ValueError, match="'week' is not one of"):
        parse_group_by(["week"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.000700000000"), "0.0007"),
        (Decimal("120.000"), "120"),
        (Decimal("0E-12"), "0"),
        (Decimal("NaN"), "null"),
        (math.nan, "null"),
        (math.inf, "null"),
        (True, "true"),
        ({"a": [1, None, "é"]}, '{"a":[1,null,"\\u00e9"]}'),
    ],
)
def test_encode_json_writes_exact_numbers_and_never_nan(value: object, text: str) -> None:
    assert encode_json(value) == text
