"""An in-memory ``LedgerReader`` that returns canned API models and records what it was asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from agentledger.schemas.api import (
    Attempt,
    Call,
    MetricsQuery,
    MetricsRow,
    RunDetail,
    RunPage,
    RunsQuery,
    RunSummary,
)


@dataclass
class FakeReader:
    """Answers ``metrics`` by the query's ``group_by``; pages ``runs`` by limit and offset.

    It does not filter by workflow or time: tests check the queries it recorded instead.
    """

    metrics_by_group: dict[tuple[str, ...], list[MetricsRow]] = field(default_factory=dict)
    run_list: list[RunSummary] = field(default_factory=list)
    details: dict[str, RunDetail] = field(default_factory=dict)
    workflow_names: list[str] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    def metrics(self, query: MetricsQuery) -> list[MetricsRow]:
        self.calls.append(("metrics", query))
        return list(self.metrics_by_group.get(tuple(query.group_by), []))

    def runs(self, query: RunsQuery) -> RunPage:
        self.calls.append(("runs", query))
        chosen = self.run_list[query.offset : query.offset + query.limit]
        return RunPage(
            total=len(self.run_list), limit=query.limit, offset=query.offset, runs=chosen
        )

    def run(self, run_id: str, project: str = "default") -> RunDetail | None:
        self.calls.append(("run", (run_id, project)))
        return self.details.get(run_id)

    def workflows(self, project: str = "default") -> list[str]:
        self.calls.append(("workflows", project))
        return list(self.workflow_names)

    def count(self, method: str) -> int:
        return sum(1 for name, _ in self.calls if name == method)


def row(**values: Any) -> MetricsRow:
    """A metrics row with every count zero and every rate undefined, except ``values``."""
    base: dict[str, Any] = {
        "runs": 0,
        "known_runs": 0,
        "correct_runs": 0,
        "calls": 0,
        "attempts": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "reingested_tokens": 0,
        "cost_usd": None,
        "unpriced_calls": 0,
        "cost_complete": True,
        "cost_per_correct_outcome_usd": None,
        "outcome_coverage": None,
        "success_rate": None,
        "reingestion_overhead": None,
        "retry_amplification": None,
        "cost_retry_amplification": None,
    }
    base.update(values)
    return MetricsRow(**base)


START = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)


def summary(run_id: str, **values: Any) -> RunSummary:
    base: dict[str, Any] = {
        "run_id": run_id,
        "workflow": "triage",
        "start_time": START,
        "end_time": START + timedelta(seconds=12.5),
        "outcome": None,
        "calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": None,
        "cost_complete": True,
        "budget_tokens": None,
        "budget_usd": None,
    }
    base.update(values)
    return RunSummary(**base)


def call(span_id: str, start_s: float, end_s: float, **values: Any) -> Call:
    base: dict[str, Any] = {
        "span_id": span_id,
        "kind": "llm",
        "name": "chat",
        "model": "m-small",
        "tool_name": "",
        "start_time": START + timedelta(seconds=start_s),
        "end_time": START + timedelta(seconds=end_s),
        "input_tokens": None,
        "output_tokens": None,
        "cached_tokens": None,
        "cache_write_tokens": None,
        "reasoning_tokens": None,
        "reingested_tokens": None,
        "cost_usd": None,
        "cost_source": "",
        "error_type": "",
    }
    base.update(values)
    return Call(**base)


def retried_run() -> RunDetail:
    """A run whose ``plan`` step failed on ``small`` and was retried on ``frontier``.

    Attempt 1 (small, discarded): one m-small call, input 1,000, output 100, $0.000700.
    Attempt 2 (frontier, used): one m-large call, input 20,000, output 2,000, $0.090000.
    A tool call outside any step costs $0.010000.
    Totals as the API would give them: 3 calls, input 21,000, output 2,100, $0.100700.
    """
    first = Attempt(
        span_id="a1",
        step_name="plan",
        step_id="s1",
        attempt=1,
        accepted=False,
        tier="small",
        start_time=START,
        end_time=START + timedelta(seconds=2),
        calls=[
            call(
                "c1",
                0.1,
                1.9,
                input_tokens=1000,
                output_tokens=100,
                cost_usd=Decimal("0.000700"),
                cost_source="genai-prices",
            )
        ],
    )
    second = Attempt(
        span_id="a2",
        step_name="plan",
        step_id="s1",
        attempt=2,
        accepted=True,
        tier="frontier",
        start_time=START + timedelta(seconds=2),
        end_time=START + timedelta(seconds=10),
        calls=[
            call(
                "c2",
                2.1,
                9.5,
                model="m-large",
                input_tokens=20000,
                output_tokens=2000,
                reasoning_tokens=1000,
                reingested_tokens=15000,
                cost_usd=Decimal("0.090000"),
                cost_source="genai-prices",
            )
        ],
    )
    tool = call(
        "c3",
        10.0,
        12.0,
        kind="tool",
        model="",
        tool_name="web_search",
        name="execute_tool web_search",
        cost_usd=Decimal("0.010000"),
        cost_source="reported",
    )
    return RunDetail(
        **summary(
            "run-retried",
            outcome="correct",
            calls=3,
            input_tokens=21000,
            output_tokens=2100,
            cost_usd=Decimal("0.100700"),
            budget_tokens=50000,
        ).model_dump(),
        attempts=[second, first],  # out of order on purpose: the page sorts by start time
        calls_outside_steps=[tool],
    )


def texts(component: Any) -> list[str]:
    """Every string in a Dash component tree, depth first: what a reader of the page sees."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if node is None:
            return
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
        elif hasattr(node, "children"):
            walk(node.children)

    walk(component)
    return found


def find_all(component: Any, predicate: Any) -> list[Any]:
    """The components of a tree for which ``predicate`` holds."""
    found: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
            return
        if not hasattr(node, "to_plotly_json"):
            return
        if predicate(node):
            found.append(node)
        walk(getattr(node, "children", None))

    walk(component)
    return found
