"""Models of the query API, shared by the collector that serves them and the dashboard.

Undefined figures (a rate with a zero denominator) are ``None`` and serialise as JSON
``null``, never NaN.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

GroupKey = Literal["workflow", "step", "tier", "model", "day"]
GROUP_KEYS: tuple[GroupKey, ...] = ("workflow", "step", "tier", "model", "day")


class MetricsQuery(BaseModel):
    """Filters and grouping of ``GET /api/v1/metrics``. Times are UTC; the window is
    ``since <= run start < until``; a run goes with the window and day of its start."""

    group_by: list[GroupKey] = Field(default_factory=list)
    project: str = "default"
    workflow: str | None = None
    model: str | None = None
    tier: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class MetricsRow(BaseModel):
    """One group of the metrics API. See ``docs/metrics.md`` for each definition."""

    workflow: str | None = None
    step: str | None = None
    tier: str | None = None
    model: str | None = None
    day: str | None = None

    runs: int
    known_runs: int
    correct_runs: int
    calls: int
    attempts: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reingested_tokens: int
    cost_usd: Decimal | None
    unpriced_calls: int
    cost_complete: bool
    cost_per_correct_outcome_usd: Decimal | None
    outcome_coverage: float | None
    # correct_runs / known_runs; null when no run has a verdict. Defaulted so that a reader
    # written before the field existed still validates.
    success_rate: float | None = None
    reingestion_overhead: float | None
    retry_amplification: float | None
    cost_retry_amplification: float | None


class RunsQuery(BaseModel):
    """Filters of ``GET /api/v1/runs``."""

    project: str = "default"
    workflow: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class RunSummary(BaseModel):
    """One row of the run list."""

    run_id: str
    workflow: str
    start_time: datetime
    end_time: datetime
    outcome: Literal["correct", "incorrect"] | None
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    cost_complete: bool
    budget_tokens: int | None
    budget_usd: Decimal | None


class RunPage(BaseModel):
    """A page of runs, newest first."""

    total: int
    limit: int
    offset: int
    runs: list[RunSummary]


class Call(BaseModel):
    """One model or tool call of a run."""

    span_id: str
    kind: str
    name: str
    model: str
    tool_name: str
    start_time: datetime
    end_time: datetime
    input_tokens: int | None
    output_tokens: int | None
    cached_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None
    reingested_tokens: int | None
    cost_usd: Decimal | None
    cost_source: str
    error_type: str


class Attempt(BaseModel):
    """One attempt of one step instance, with its calls."""

    span_id: str
    step_name: str
    step_id: str
    attempt: int
    accepted: bool
    tier: str
    start_time: datetime
    end_time: datetime
    calls: list[Call]


class RunDetail(RunSummary):
    """A run with its attempts and calls; calls outside any step are in ``calls``."""

    attempts: list[Attempt]
    calls_outside_steps: list[Call]


class OutcomeIn(BaseModel):
    """One verdict posted to ``POST /api/v1/outcomes``."""

    run_id: str = Field(min_length=1)
    outcome: Literal["correct", "incorrect"]
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    source: str = "api"
    timestamp: datetime | None = None
    project: str = "default"


class SqlIn(BaseModel):
    """One read-only query posted to ``POST /api/v1/sql``."""

    sql: str = Field(min_length=1)
    max_rows: int = Field(default=10_000, ge=1, le=100_000)


class SqlResult(BaseModel):
    """The answer of an ad-hoc query: column names, ClickHouse types and rows."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    # True when the query had more rows than ``max_rows`` and the answer was cut.
    truncated: bool


class BudgetQuery(BaseModel):
    """Filters of ``GET /api/v1/budgets``: the runs of a workflow that started in a window."""

    project: str = "default"
    workflow: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: How many breaching runs and alerts to list, newest first.
    limit: int = Field(default=50, ge=1, le=1000)


class BudgetBreachRow(BaseModel):
    """A run whose totals went over its own budget (``docs/budgets.md``)."""

    run_id: str
    workflow: str
    start_time: datetime
    outcome: Literal["correct", "incorrect"] | None
    tokens: int
    cost_usd: Decimal | None
    cost_complete: bool
    budget_tokens: int | None
    budget_usd: Decimal | None
    over_tokens: bool
    over_usd: bool
    #: tokens / budget_tokens and cost / budget_usd; null without that budget.
    token_use: float | None
    cost_use: float | None


class BudgetUse(BaseModel):
    """How close the runs of one workflow come to their ceilings: use = actual / budget."""

    workflow: str
    runs: int
    #: Runs that carry a token budget, a cost budget, or either.
    token_budget_runs: int
    cost_budget_runs: int
    budget_runs: int
    breached_runs: int
    token_use_p50: float | None
    token_use_p95: float | None
    token_use_max: float | None
    cost_use_p50: float | None
    cost_use_p95: float | None
    cost_use_max: float | None


class AlertRow(BaseModel):
    """The latest state of one collector alert (a rule and its subject)."""

    rule: str
    kind: str
    state: Literal["firing", "resolved"]
    workflow: str
    run_id: str
    unit: str
    threshold: Decimal
    actual: Decimal | None
    fired_at: datetime
    changed_at: datetime
    message: str


class BudgetReport(BaseModel):
    """Budget breaches of the window, their runs, use per workflow, and the collector's alerts."""

    breached_runs: int
    workflows: list[BudgetUse]
    breaches: list[BudgetBreachRow]
    alerts: list[AlertRow]


class LedgerReader(Protocol):
    """The query interface that the collector hands to the dashboard at start-up."""

    def metrics(self, query: MetricsQuery) -> list[MetricsRow]: ...

    def runs(self, query: RunsQuery) -> RunPage: ...

    def run(self, run_id: str, project: str = "default") -> RunDetail | None: ...

    def workflows(self, project: str = "default") -> list[str]: ...

    def budgets(self, query: BudgetQuery) -> BudgetReport: ...
