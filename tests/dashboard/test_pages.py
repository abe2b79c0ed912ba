"""The analysis pages' bodies on canned reports: what they show, the CSV behind each table,
and the empty and undefined states, which say why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from agentledger.dashboard import (
    csv_export,
    pages,
    reingestion_page,
    retries_page,
    routing_page,
    runs_page,
    steps_page,
    tails_page,
)
from agentledger.dashboard.filters import Filters, parse_search
from agentledger.schemas.analysis import (
    ModelPoint,
    ReingestionReport,
    ReingestionSlice,
    RetryReport,
    RetrySlice,
    RoutingCell,
    RoutingReport,
    RoutingRow,
    RunSearchQuery,
    SliceQuery,
    TailReport,
    TailRow,
)
from agentledger.schemas.api import RunPage
from tests.dashboard.fakes import FakeReader, find_all, row, summary, texts

PREFIX = "/dashboard/"


@dataclass
class FakeAnalysis(FakeReader):
    """A ``FakeReader`` with canned analysis reports; empty ones unless given."""

    tail: TailReport = field(
        default_factory=lambda: TailReport(
            workflows=[],
            tail_runs=[],
            predicted_calls=0,
            prediction_correlation=None,
            predictions=[],
        )
    )
    reingest: ReingestionReport = field(
        default_factory=lambda: ReingestionReport(positions=[], slices=[])
    )
    retry: RetryReport = field(default_factory=lambda: RetryReport(slices=[], distribution=[]))
    route: RoutingReport = field(
        default_factory=lambda: RoutingReport(margin=0.05, rows=[], models=[])
    )
    asked: list[Any] = field(default_factory=list)

    def tails(self, query: SliceQuery) -> TailReport:
        self.asked.append(query)
        return self.tail

    def reingestion(self, query: SliceQuery) -> ReingestionReport:
        self.asked.append(query)
        return self.reingest

    def retries(self, query: SliceQuery) -> RetryReport:
        self.asked.append(query)
        return self.retry

    def routing(self, query: SliceQuery, margin: float = 0.05) -> RoutingReport:
        self.asked.append((query, margin))
        return self.route

    def run_search(self, query: RunSearchQuery) -> RunPage:
        self.asked.append(query)
        chosen = self.run_list[query.offset : query.offset + query.limit]
        return RunPage(
            total=len(self.run_list), limit=query.limit, offset=query.offset, runs=chosen
        )


def csv_records(component: Any) -> dict[str, list[dict[str, Any]]]:
    stores = find_all(
        component,
        lambda node: (
            isinstance(getattr(node, "id", None), dict) and node.id.get("type") == csv_export.DATA
        ),
    )
    return {store.id["table"]: store.data for store in stores}


@pytest.mark.parametrize(
    ("segment", "says"),
    [
        ("steps", "No steps in this window"),
        ("reingestion", "No model calls in this window"),
        ("retries", "No step attempts in this window"),
        ("runs", "No runs match"),
        ("tails", "No runs in this window"),
        ("routing", "No model calls in this window"),
    ],
)
def test_an_empty_window_says_why_on_every_page(segment: str, says: str) -> None:
    shown = texts(pages.render_body(FakeAnalysis(), PREFIX, segment, "?workflow=w"))
    assert says in shown
    assert not any("nan" in text.lower().split() for text in shown)


def test_the_shared_filters_reach_the_reader() -> None:
    reader = FakeAnalysis()
    pages.render_body(reader, PREFIX, "tails", "?workflow=w&model=m1&tier=small&since=2026-03-01")
    (query,) = reader.asked
    assert (query.workflow, query.model, query.tier) == ("w", "m1", "small")
    assert query.since == datetime(2026, 3, 1, tzinfo=UTC)


def test_steps_table_shows_shares_links_cells_to_their_runs_and_downloads() -> None:
    rows = [
        row(
            step="plan",
            tier="small",
            runs=2,
            known_runs=2,
            correct_runs=1,
            calls=3,
            cost_usd=Decimal("0.25"),
            cost_per_correct_outcome_usd=Decimal("0.25"),
            success_rate=0.5,
        ),
        row(step="plan", tier="frontier", runs=1, known_runs=0, calls=1, cost_usd=Decimal("0.75")),
    ]
    reader = FakeAnalysis(metrics_by_group={("step", "tier"): rows})
    body = steps_page.body(reader, parse_search("?workflow=w").filters, PREFIX)
    shown = texts(body)
    # Spend shares: 0.25 / 1.00 and 0.75 / 1.00; call shares 3 / 4 and 1 / 4.
    assert {"25.0%", "75.0%"} <= set(shown)
    links = [node.href for node in find_all(body, lambda n: getattr(n, "href", None))]
    assert "/dashboard/runs?workflow=w&tier=small&step=plan" in links
    (records,) = csv_records(body).values()
    assert [(r["step"], r["tier"], r["cost_usd"]) for r in records] == [
        ("plan", "small", "0.25"),
        ("plan", "frontier", "0.75"),
    ]


def test_a_heatmap_click_opens_the_runs_of_the_cell() -> None:
    href = steps_page.runs_href_for_click(PREFIX, "?workflow=w", {"x": "mid", "y": "draft"})
    assert href == "/dashboard/runs?workflow=w&tier=mid&step=draft"


def test_undefined_figures_read_as_a_dash_with_their_reason() -> None:
    reader = FakeAnalysis(
        reingest=ReingestionReport(
            positions=[],
            slices=[
                ReingestionSlice(
                    step="s",
                    tier="",
                    calls=1,
                    input_tokens=0,
                    reingested_tokens=0,
                    cached_tokens=0,
                    reingestion_overhead=None,
                    cached_share=None,
                    reingested_cost_usd=None,
                )
            ],
        )
    )
    # No positions: the page says there are no calls rather than drawing empty charts.
    assert "No model calls in this window" in texts(
        reingestion_page.body(reader, Filters(), PREFIX)
    )
    table = reingestion_page.table(reader.reingest)
    assert "—" in texts(table)


def test_retries_join_amplification_from_the_metrics_api() -> None:
    reader = FakeAnalysis(
        metrics_by_group={
            ("step", "tier"): [
                row(
                    step="draft",
                    tier="mid",
                    calls=2,
                    retry_amplification=2.25,
                    cost_retry_amplification=2.25,
                )
            ]
        },
        retry=RetryReport(
            slices=[
                RetrySlice(
                    step="draft",
                    tier="mid",
                    instances=1,
                    attempts=2,
                    retried_instances=1,
                    retry_rate=1.0,
                    discarded_attempts=1,
                    discarded_tokens=1_000,
                    discarded_cost_usd=Decimal("0.002"),
                )
            ],
            distribution=[],
        ),
    )
    body = retries_page.body(reader, Filters(), PREFIX)
    assert {"2.25×", "100.0%", "$0.00200", "1,000"} <= set(texts(body))
    assert csv_records(body)["retries"][0]["retry_amplification"] == 2.25


def test_tails_say_why_a_correlation_is_missing() -> None:
    reader = FakeAnalysis(
        tail=TailReport(
            workflows=[
                TailRow(
                    workflow="w",
                    runs=1,
                    priced_runs=0,
                    cost_p50_usd=None,
                    cost_p95_usd=None,
                    cost_p99_usd=None,
                    cost_max_usd=None,
                    tokens_p50=10,
                    tokens_p95=10,
                    tokens_p99=10,
                    tokens_max=10,
                )
            ],
            tail_runs=[],
            predicted_calls=1,
            prediction_correlation=None,
            predictions=[],
        )
    )
    body = tails_page.body(reader, Filters(), PREFIX)
    shown = texts(body)
    assert "No tail runs" in shown
    kpis = tails_page.prediction_kpis(reader.tail)
    assert kpis[1].shown.note == "fewer than two calls carried a prediction"


def test_routing_marks_the_choice_and_explains_a_row_without_one() -> None:
    def cell(tier: str, **values: Any) -> RoutingCell:
        base = dict(
            calls=1,
            runs=1,
            known_runs=1,
            correct_runs=1,
            success_rate=1.0,
            cost_usd=Decimal("0.1"),
            cost_per_correct_outcome_usd=Decimal("0.1"),
        )
        return RoutingCell(tier=tier, **{**base, **values})

    chosen = cell("small", recommended=True)
    reader = FakeAnalysis(
        route=RoutingReport(
            margin=0.05,
            rows=[
                RoutingRow(
                    complexity="low",
                    sensitivity="internal",
                    context="short",
                    tiers=[chosen, cell("frontier")],
                    best_success_rate=1.0,
                    recommended_tier="small",
                ),
                RoutingRow(
                    complexity="high",
                    sensitivity="external",
                    context="long",
                    tiers=[
                        cell(
                            "frontier",
                            known_runs=0,
                            correct_runs=0,
                            success_rate=None,
                            cost_per_correct_outcome_usd=None,
                        )
                    ],
                    best_success_rate=None,
                    recommended_tier=None,
                    reason="no run of this cell has a verdict",
                ),
            ],
            models=[],
        )
    )
    body = routing_page.content(reader, Filters(), 0.05)
    table = find_all(
        body, lambda n: getattr(n, "title", None) == "no run of this cell has a verdict"
    )
    assert table, "the row without a choice explains why"
    assert "cheapest within margin" in texts(body)


def test_runs_page_keeps_step_and_search_in_its_links() -> None:
    reader = FakeAnalysis(run_list=[summary(f"run-{n:02d}") for n in range(30)])
    filters = parse_search("?step=plan&tier=small&search=run").filters
    body = runs_page.body(reader, filters, PREFIX)
    (query,) = reader.asked
    assert (query.step, query.tier, query.search, query.limit) == ("plan", "small", "run", 25)
    older = [n.href for n in find_all(body, lambda n: getattr(n, "children", None) == "Older →")]
    assert older == ["/dashboard/runs?tier=small&step=plan&search=run&offset=25"]
    assert runs_page.with_search("?step=plan&offset=25", " abc ").to_search() == (
        "?step=plan&search=abc"
    )


def test_csv_holds_exact_values_and_blanks_for_undefined() -> None:
    text = csv_export.to_csv([{"step": "a,b", "cost_usd": "0.000700", "rate": None}])
    assert text == 'step,cost_usd,rate\n"a,b",0.000700,\n'
    assert csv_export.to_csv([]) == ""


def test_a_model_group_without_a_model_is_labelled_not_blank() -> None:
    # The API groups tool calls (and a call whose provider named no model) under model "".
    blank = ModelPoint(
        tier="",
        model="",
        calls=0,
        runs=4,
        known_runs=4,
        correct_runs=3,
        success_rate=0.75,
        cost_usd=Decimal("0.09"),
        cost_per_correct_outcome_usd=Decimal("0.03"),
    )
    named = blank.model_copy(update={"model": "m-small", "tier": "small"})
    report = RoutingReport(margin=0.05, rows=[], models=[named, blank])

    table = routing_page.model_table(report)
    figure = routing_page.scatter(report)

    assert "(tool calls, no model)" in texts(table)
    labels = [label for trace in figure.data for label in trace.text]
    assert sorted(labels) == ["(tool calls, no model)", "m-small"]
