"""Alert rules and their state, on an in-process store with hand-made spans and a fixed clock.

Webhook delivery goes through an httpx mock transport: no network.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentledger.collector.alerts import (
    AlertEvaluator,
    AlertScheduler,
    AlertsConfig,
    load_config,
    parse_duration,
    scheduler_for,
)
from agentledger.collector.notify import Notifier
from agentledger.collector.queries import StoreReader
from agentledger.collector.settings import CollectorSettings, SettingsError
from agentledger.collector.store import Store
from agentledger.schemas.api import BudgetQuery
from tests.collector.spanrows import T0, insert_outcome, insert_spans, open_store, span

HOOK = "http://hook.test/alerts"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    yield from open_store(tmp_path_factory.mktemp("alerts"))


@pytest.fixture
def project(request: pytest.FixtureRequest) -> str:
    return request.node.name[:60]


class Hook:
    """Records webhook requests; answers with the statuses queued, then 200."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.statuses: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content, parse_float=Decimal))
        self.keys.append(request.headers["Idempotency-Key"])
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


def evaluator(
    store: Store, hook: Hook, rules: list[dict[str, Any]], at: datetime
) -> AlertEvaluator:
    config = AlertsConfig.model_validate({"channel": [{"webhook": HOOK}], "rule": rules})
    client = httpx.Client(transport=httpx.MockTransport(hook))
    return AlertEvaluator(
        store, config, notifier=Notifier(config.channels, client=client), clock=lambda: at
    )


def llm(span_id: str, project: str, run_id: str, **columns: Any) -> dict[str, Any]:
    return span(span_id, project=project, trace_id=run_id, run_id=run_id, **columns)


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("24h", 86_400), ("7d", 604_800), ("2w", 1_209_600), (300, 300)],
)
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0h", "1y", "-5m", "soon", 0])
def test_bad_durations_name_the_value(text: str | int) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("(", r"\(")):
        parse_duration(text)


def test_an_alerts_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(
        """
interval_seconds = 30
[[channel]]
webhook = "https://example.com/hook"
headers = { Authorization = "Bearer x" }
[[channel]]
apprise = "slack://a/b/c/#ops"
[[rule]]
name = "spend"
kind = "workflow_spend"
threshold = "25.50"
window = "1d"
""",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.interval_seconds == 30
    assert [c.label for c in config.channels] == ["webhook example.com", "apprise slack"]
    (rule,) = config.rules
    assert (rule.threshold, rule.window_seconds, rule.unit) == (Decimal("25.50"), 86_400, "usd")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[[rule]]\nname = "a"\nkind = "run_speed"\nthreshold = 1', r"rule\.0\.kind"),
        ('[[rule]]\nname = "a"\nkind = "run_cost"\nthreshold = -1', r"rule\.0\.threshold"),
        ('[[rule]]\nname = "a"\nkind = "run_cost"\nthreshold = 1\nwindow = "1y"', "'1y'"),
        ('[[channel]]\nwebhook = "x"\napprise = "y"', "exactly one of"),
        ('[[channel]]\nwebhook = "ftp://x"', "'ftp://x'"),
        ('[[rule]]\nname = "a"\nkind = "run_cost"\nthreshold = 1\n' * 2, "appears twice"),
        ("interval_seconds = [", "not valid TOML"),
        ("intervall_seconds = 5", "intervall_seconds"),
    ],
)
def test_an_invalid_alerts_file_is_refused_naming_the_entry(
    tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=named):
        load_config(path)


def test_a_missing_alerts_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot be read"):
        load_config(tmp_path / "nope.toml")


# --- per-run ceilings -------------------------------------------------------------------------


def test_a_run_over_its_ceiling_fires_once_and_survives_a_restart(
    store: Store, project: str
) -> None:
    insert_spans(
        store,
        llm("a1", project, "over", workflow="w", input_tokens=9_000, output_tokens=1_001),
        llm("b1", project, "under", workflow="w", input_tokens=9_000, output_tokens=1_000),
        llm("c1", project, "other", workflow="v", input_tokens=50_000, output_tokens=0),
    )
    rules = [
        {
            "name": "tok",
            "kind": "run_tokens",
            "workflow": "w",
            "threshold": 10_000,
            "project": project,
        }
    ]
    hook = Hook()
    first = evaluator(store, hook, rules, T0 + timedelta(hours=1))

    (fired,) = first.evaluate()
    assert (fired.run_id, fired.workflow, fired.actual) == ("over", "w", Decimal(10_001))
    assert first.evaluate() == []
    # 9,000 + 1,001 = 10,001 > 10,000; "under" has exactly 10,000 and is not over.
    assert [(b["run_id"], b["actual"], b["threshold"]) for b in hook.bodies] == [
        ("over", 10_001, 10_000)
    ]

    restarted = evaluator(store, hook, rules, T0 + timedelta(hours=2))
    assert restarted.evaluate() == []
    assert len(hook.bodies) == 1
    assert hook.keys == [hook.bodies[0]["idempotency_key"]]


def test_a_run_cost_ceiling_ignores_unknown_cost(store: Store, project: str) -> None:
    insert_spans(
        store,
        llm("a1", project, "priced", workflow="w", model="m", input_tokens=1, cost_usd="0.30"),
        llm("a2", project, "priced", workflow="w", model="m", input_tokens=1, cost_usd="0.25"),
        llm("b1", project, "unpriced", workflow="w", model="x", input_tokens=10**9),
    )
    rules = [{"name": "cost", "kind": "run_cost", "threshold": "0.5", "project": project}]
    hook = Hook()
    (fired,) = evaluator(store, hook, rules, T0 + timedelta(hours=1)).evaluate()
    assert (fired.run_id, fired.actual) == ("priced", Decimal("0.55"))


# --- windowed rules ---------------------------------------------------------------------------


def test_workflow_spend_fires_then_resolves_when_the_window_moves_on(
    store: Store, project: str
) -> None:
    insert_spans(
        store,
        llm("a1", project, "r1", workflow="w", model="m", input_tokens=1, cost_usd="3.00"),
        llm("b1", project, "r2", workflow="w", model="m", input_tokens=1, cost_usd="2.50"),
    )
    rules = [
        {
            "name": "spend",
            "kind": "workflow_spend",
            "threshold": 5,
            "window": "1d",
            "project": project,
        }
    ]
    hook = Hook()
    (fired,) = evaluator(store, hook, rules, T0 + timedelta(hours=1)).evaluate()
    assert (fired.state, fired.workflow, fired.actual) == ("firing", "w", Decimal("5.5"))

    later = evaluator(store, hook, rules, T0 + timedelta(days=2))
    (resolved,) = later.evaluate()
    assert resolved.state == "resolved"
    assert later.evaluate() == []
    assert [b["state"] for b in hook.bodies] == ["firing", "resolved"]
    assert hook.keys[0] != hook.keys[1]


def test_cost_per_correct_outcome_over_a_window(store: Store, project: str) -> None:
    # Two runs at $0.09, one correct: (0.09 + 0.09) / 1 = $0.18 per correct outcome.
    insert_spans(
        store,
        llm("a1", project, "r1", workflow="w", model="m", input_tokens=1, cost_usd="0.09"),
        llm("b1", project, "r2", workflow="w", model="m", input_tokens=1, cost_usd="0.09"),
    )
    insert_outcome(store, "r1", "correct", project=project)
    insert_outcome(store, "r2", "incorrect", project=project)
    rules = [{"name": "cpc", "kind": "cost_per_correct", "threshold": "0.15", "project": project}]
    (fired,) = evaluator(store, Hook(), rules, T0 + timedelta(hours=1)).evaluate()
    assert fired.actual == Decimal("0.18")


def test_p95_run_cost_interpolates_between_runs(store: Store, project: str) -> None:
    # Run costs 0.01 .. 0.05: the 95th percentile is 0.01 + 0.95 * (0.05 - 0.01) = 0.048.
    insert_spans(
        store,
        *[
            llm(
                f"s{i}",
                project,
                f"r{i}",
                workflow="w",
                model="m",
                input_tokens=1,
                cost_usd=f"0.0{i}",
            )
            for i in range(1, 6)
        ],
    )
    rules = [{"name": "p95", "kind": "p95_run_cost", "threshold": "0.04", "project": project}]
    (fired,) = evaluator(store, Hook(), rules, T0 + timedelta(hours=1)).evaluate()
    assert fired.actual == Decimal("0.048")


def test_unpriced_calls_fire_per_workflow(store: Store, project: str) -> None:
    insert_spans(
        store,
        llm("a1", project, "r1", workflow="w", model="private-1", input_tokens=10),
        llm("a2", project, "r1", workflow="w", model="private-1", input_tokens=10),
        llm("b1", project, "r2", workflow="v", model="m", input_tokens=10, cost_usd="0.1"),
    )
    rules = [{"name": "unpriced", "kind": "unpriced_calls", "threshold": 0, "project": project}]
    (fired,) = evaluator(store, Hook(), rules, T0 + timedelta(hours=1)).evaluate()
    assert (fired.workflow, fired.actual) == ("w", Decimal(2))


# --- delivery ---------------------------------------------------------------------------------


def test_a_failed_notification_is_sent_again_with_the_same_key(store: Store, project: str) -> None:
    insert_spans(store, llm("a1", project, "r1", workflow="w", input_tokens=20))
    rules = [{"name": "tok", "kind": "run_tokens", "threshold": 10, "project": project}]
    hook = Hook()
    hook.statuses = [503]
    alerts = evaluator(store, hook, rules, T0 + timedelta(hours=1))

    assert len(alerts.evaluate()) == 1  # recorded, but the receiver failed
    assert alerts.evaluate() == []  # not a new transition: the same one, sent again
    assert alerts.evaluate() == []
    assert len(hook.keys) == 2
    assert hook.keys[0] == hook.keys[1]
    (state,) = alerts.current_states(project).values()
    assert (state.delivered, state.attempts) == (True, 2)


# --- the budgets report -----------------------------------------------------------------------


def test_budget_report_lists_runs_over_their_own_budget(store: Store, project: str) -> None:
    insert_spans(
        store,
        span(
            "r",
            project=project,
            trace_id="x1",
            run_id="x1",
            kind="run",
            workflow="w",
            budget_tokens=1_000,
            budget_usd="0.010",
        ),
        llm(
            "c",
            project,
            "x1",
            workflow="w",
            model="m",
            input_tokens=900,
            output_tokens=200,
            cost_usd="0.002",
        ),
        span(
            "r",
            project=project,
            trace_id="x2",
            run_id="x2",
            kind="run",
            workflow="w",
            budget_tokens=1_000,
        ),
        llm("c", project, "x2", workflow="w", model="m", input_tokens=400, output_tokens=100),
        span("r", project=project, trace_id="x3", run_id="x3", kind="run", workflow="v"),
    )
    report = StoreReader(store).budgets(BudgetQuery(project=project))

    (breach,) = report.breaches
    # x1: 900 + 200 = 1,100 tokens > 1,000; its $0.002 is 20% of its $0.010 budget.
    assert (breach.run_id, breach.tokens, breach.over_tokens, breach.over_usd) == (
        "x1",
        1_100,
        True,
        False,
    )
    assert (breach.token_use, breach.cost_use) == (pytest.approx(1.1), pytest.approx(0.2))
    v, w = report.workflows
    assert (v.workflow, v.runs, v.budget_runs, v.token_use_p50) == ("v", 1, 0, None)
    assert (w.runs, w.token_budget_runs, w.cost_budget_runs, w.breached_runs) == (2, 2, 1, 1)
    # Token use 0.5 (x2) and 1.1 (x1): median 0.8, p95 0.5 + 0.95 * 0.6 = 1.07.
    assert w.token_use_p50 == pytest.approx(0.8)
    assert w.token_use_p95 == pytest.approx(1.07)
    assert w.cost_use_max == pytest.approx(0.2)
    assert report.breached_runs == 1


def test_only_the_evaluating_process_schedules_rules(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text('[[rule]]\nname = "a"\nkind = "run_cost"\nthreshold = 1\n', "utf-8")
    assert scheduler_for(CollectorSettings(alerts_file=path, evaluate_alerts=False), store) is None
    assert scheduler_for(CollectorSettings(), store) is None
    scheduler = scheduler_for(CollectorSettings(alerts_file=path), store)
    assert isinstance(scheduler, AlertScheduler)
    scheduler.stop()  # never started: stops at once
