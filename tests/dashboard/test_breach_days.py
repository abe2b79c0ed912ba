"""``GET /api/v1/budgets/by_day``, behind the overview's budget-breach trend: per UTC day of
the runs' start, the runs and those over their own budget, by the rules of the budget report."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agentledger.collector.api import api_router
from agentledger.collector.budget_api import budget_router
from agentledger.collector.queries import StoreReader
from agentledger.collector.store import Store
from tests.collector.spanrows import T0, insert_spans, open_store, span

DAY = timedelta(days=1)
# (run, day offset, workflow, token budget, input + output tokens of its one call)
RUNS = [
    ("r1", 0, "w", 100, (80, 40)),  # 120 > 100: over
    ("r2", 0, "w", 100, (50, 10)),  # 60: under
    ("r3", 2, "w", 10, (8, 2)),  # 10 is not over 10
    ("r4", 2, "w", 5, (5, 1)),  # 6 > 5: over
    ("r5", 2, "other", 1, (9, 9)),  # over, another workflow
]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    for store in open_store(tmp_path_factory.mktemp("breach-days")):
        _fill(store)
        reader = StoreReader(store)
        app = FastAPI()
        app.include_router(api_router(reader))
        app.include_router(budget_router(reader))
        with TestClient(app) as test_client:
            yield test_client


def _fill(store: Store) -> None:
    rows = []
    for index, (run_id, days, workflow, budget, (tokens_in, tokens_out)) in enumerate(RUNS):
        start = T0 + days * DAY + timedelta(hours=index)
        trace = f"t{index}"
        rows.append(
            span(
                f"run{index}",
                kind="run",
                trace_id=trace,
                run_id=run_id,
                workflow=workflow,
                budget_tokens=budget,
                start_time=start,
                end_time=start + timedelta(seconds=9),
            )
        )
        rows.append(
            span(
                f"call{index}",
                trace_id=trace,
                run_id=run_id,
                workflow=workflow,
                model="m",
                parent_span_id=f"run{index}",
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                start_time=start + timedelta(seconds=1),
            )
        )
    insert_spans(store, *rows)


def expected(workflow: str | None = None) -> list[dict[str, object]]:
    days: dict[str, list[int]] = {}
    for _run, offset, flow, budget, (tokens_in, tokens_out) in RUNS:
        if workflow is not None and flow != workflow:
            continue
        day = (T0 + offset * DAY).date().isoformat()
        counts = days.setdefault(day, [0, 0])
        counts[0] += 1
        counts[1] += int(tokens_in + tokens_out > budget)
    return [
        {"day": day, "runs": runs, "breached_runs": over}
        for day, (runs, over) in sorted(days.items())
    ]


@pytest.mark.parametrize("workflow", [None, "w"])
def test_breaches_by_day_follow_the_budget_rules(client: TestClient, workflow: str | None) -> None:
    params = {"workflow": workflow} if workflow else {}

    answer = client.get("/api/v1/budgets/by_day", params=params)

    assert answer.status_code == 200, answer.text
    assert answer.json() == expected(workflow)


def test_breaches_by_day_add_up_to_the_budget_report(client: TestClient) -> None:
    days = client.get("/api/v1/budgets/by_day").json()
    report = client.get("/api/v1/budgets").json()

    assert sum(day["breached_runs"] for day in days) == report["breached_runs"]


def test_a_window_keeps_the_days_of_runs_started_in_it(client: TestClient) -> None:
    since = (T0 + 2 * DAY).isoformat()

    answer = client.get("/api/v1/budgets/by_day", params={"since": since})

    assert answer.json() == expected()[1:]


def test_a_window_that_ends_before_it_starts_is_refused_naming_until(client: TestClient) -> None:
    answer = client.get(
        "/api/v1/budgets/by_day", params={"since": T0.isoformat(), "until": T0.isoformat()}
    )

    assert answer.status_code == 400
    assert answer.json()["detail"][0]["loc"] == ["query", "until"]
