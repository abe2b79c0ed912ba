"""Models of the analysis API behind the dashboard's pages: tails, re-ingestion, retries,
routing and the run search. Definitions are in ``docs/metrics.md`` ("Analysis pages").

Undefined figures are ``None`` (JSON ``null``); money is ``Decimal``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from pydantic import BaseModel, Field

from agentledger.schemas.api import BudgetQuery, LedgerReader, RunPage, SqlResult


class SliceQuery(BaseModel):
    """The filters every page shares: a window of run starts, the run's workflow, and the
    call's model and tier (a run is in the slice when it made such a call)."""

    project: str = "default"
    workflow: str | None = None
    model: str | None = None
    tier: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class RunSearchQuery(SliceQuery):
    """``GET /api/v1/run_search``: the shared filters, a step, and text in the id or workflow."""

    step: str | None = None
    search: str | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class Dimensions(BaseModel):
    """The values the filter bar offers."""

    workflows: list[str]
    models: list[str]
    tiers: list[str]


# --- tails ---------------------------------------------------------------------------------


class TailRow(BaseModel):
    """Cost and tokens per run of one workflow: exact quantiles over its runs."""

    workflow: str
    runs: int
    priced_runs: int
    cost_p50_usd: Decimal | None
    cost_p95_usd: Decimal | None
    cost_p99_usd: Decimal | None
    cost_max_usd: Decimal | None
    tokens_p50: int | None
    tokens_p95: int | None
    tokens_p99: int | None
    tokens_max: int | None


class TailRun(BaseModel):
    """A run at or above the 95th percentile of cost of its workflow."""

    run_id: str
    workflow: str
    start_time: datetime
    outcome: str | None
    total_tokens: int
    cost_usd: Decimal | None


class PredictionPoint(BaseModel):
    """One call that carried a prediction of its tokens, against what it used."""

    run_id: str
    model: str
    tier: str
    predicted_tokens: int
    actual_tokens: int


class TailReport(BaseModel):
    workflows: list[TailRow]
    tail_runs: list[TailRun]
    #: calls with a prediction; ``predictions`` holds at most a sample of them for plotting.
    predicted_calls: int
    #: Pearson correlation of predicted and actual tokens; null with fewer than two calls or
    #: no variation.
    prediction_correlation: float | None
    predictions: list[PredictionPoint]


# --- re-ingestion --------------------------------------------------------------------------


class ReingestionPosition(BaseModel):
    """Input tokens of the n-th model call of each run, split into fresh and re-ingested."""

    position: int
    calls: int
    input_tokens: int
    reingested_tokens: int
    fresh_tokens: int
    #: input of calls that did not report a re-ingested count
    unknown_tokens: int
    cached_tokens: int


class ReingestionSlice(BaseModel):
    step: str
    tier: str
    calls: int
    input_tokens: int
    reingested_tokens: int
    cached_tokens: int
    reingestion_overhead: float | None
    cached_share: float | None
    #: each call's cost shared out by token count: cost × reingested ÷ (input + output)
    reingested_cost_usd: Decimal | None


class ReingestionReport(BaseModel):
    positions: list[ReingestionPosition]
    slices: list[ReingestionSlice]


# --- retries -------------------------------------------------------------------------------


class RetrySlice(BaseModel):
    """Attempts of one step on one tier."""

    step: str
    tier: str
    instances: int
    attempts: int
    #: instances with more than one attempt (on any tier)
    retried_instances: int
    retry_rate: float | None
    discarded_attempts: int
    discarded_tokens: int
    discarded_cost_usd: Decimal


class AttemptCount(BaseModel):
    """How many instances of a step took ``attempts`` attempts."""

    step: str
    attempts: int
    instances: int


class RetryReport(BaseModel):
    slices: list[RetrySlice]
    distribution: list[AttemptCount]


# --- routing -------------------------------------------------------------------------------


class RoutingCell(BaseModel):
    """Model calls of one decision-table cell on one tier, and the runs that made them."""

    tier: str
    calls: int
    runs: int
    known_runs: int
    correct_runs: int
    success_rate: float | None
    cost_usd: Decimal | None
    cost_per_correct_outcome_usd: Decimal | None
    recommended: bool = False


class RoutingRow(BaseModel):
    """One cell of the decision table: complexity × sensitivity × context length."""

    complexity: str
    sensitivity: str
    context: str
    tiers: list[RoutingCell]
    best_success_rate: float | None
    recommended_tier: str | None
    #: why no tier is recommended, when none is
    reason: str | None = None


class ModelPoint(BaseModel):
    """Cost against accuracy of one model on one tier."""

    tier: str
    model: str
    calls: int
    runs: int
    known_runs: int
    correct_runs: int
    success_rate: float | None
    cost_usd: Decimal | None
    cost_per_correct_outcome_usd: Decimal | None


class RoutingReport(BaseModel):
    margin: float
    rows: list[RoutingRow]
    models: list[ModelPoint]


# --- budget breaches over time ---------------------------------------------------------------


class BreachDay(BaseModel):
    """The runs that started on one UTC day and how many of them went over their own budget
    (``GET /api/v1/budgets/by_day``; the rules of ``docs/budgets.md``)."""

    day: str
    runs: int
    breached_runs: int


# --- ad-hoc SQL ------------------------------------------------------------------------------

#: Rows an ad-hoc query returns at most unless it asks for fewer.
SQL_MAX_ROWS = 10_000


class SqlRefusedError(ValueError):
    """Ad-hoc SQL that did not run because it is not one read-only query, or that the store
    refused. The message says which and may be shown to the person who wrote the query."""


class SqlNotReadOnlyError(SqlRefusedError):
    """The text is not one read-only query, so it was not run (ClickHouse never saw it)."""


class SqlForbiddenError(PermissionError):
    """The viewer may not run ad-hoc SQL: once keys exist, only an administrator of every
    project may (the rule of ``POST /api/v1/sql``). The message says what key is needed."""


class AnalysisReader(LedgerReader, Protocol):
    """The ``LedgerReader`` with the analysis pages' queries."""

    def dimensions(self, project: str = "default") -> Dimensions: ...

    def tails(self, query: SliceQuery) -> TailReport: ...

    def reingestion(self, query: SliceQuery) -> ReingestionReport: ...

    def retries(self, query: SliceQuery) -> RetryReport: ...

    def routing(self, query: SliceQuery, margin: float = 0.05) -> RoutingReport: ...

    def run_search(self, query: RunSearchQuery) -> RunPage: ...

    def budget_days(self, query: BudgetQuery) -> list[BreachDay]: ...

    def sql(self, sql: str, max_rows: int = SQL_MAX_ROWS) -> SqlResult:
        """One read-only query; raises ``SqlRefusedError`` or ``SqlForbiddenError``."""
        ...

    def sql_refusal(self) -> str | None:
        """Why the current viewer may not run ad-hoc SQL, or None when they may."""
        ...
