"""The analysis queries of the dashboard's pages, composed into ``StoreReader``.

Each concept lives in its own module over the ad-hoc SQL views; this mixin only hands them
the store, so that ``StoreReader`` gains them by inheriting it. The one query written here,
breaches per day, is the budget report's own run totals grouped by day.
"""

from __future__ import annotations

from typing import Any

from agentledger.collector import adhoc, distributions, reingestion_queries, retry_queries, routing
from agentledger.collector import run_search as searching
from agentledger.collector.rollups import rollups_of
from agentledger.collector.store import Store
from agentledger.schemas.analysis import (
    SQL_MAX_ROWS,
    BreachDay,
    Dimensions,
    ReingestionReport,
    RetryReport,
    RoutingReport,
    RunSearchQuery,
    SliceQuery,
    TailReport,
)
from agentledger.schemas.api import BudgetQuery, RunPage, SqlResult


class AnalysisQueries:
    """The ``AnalysisReader`` methods over ``self._store``, read after a rollup catch-up."""

    _store: Store

    def workflows(self, project: str = "default") -> list[str]:
        raise NotImplementedError  # provided by StoreReader

    def _fresh(self) -> Store:
        """The store, with its rollups brought up to date with everything stored."""
        rollups_of(self._store).catch_up()
        return self._store

    def dimensions(self, project: str = "default") -> Dimensions:
        return searching.dimensions(self._fresh(), self.workflows(project), project)

    def tails(self, query: SliceQuery) -> TailReport:
        return distributions.tails(self._fresh(), query)

    def reingestion(self, query: SliceQuery) -> ReingestionReport:
        return reingestion_queries.reingestion(self._fresh(), query)

    def retries(self, query: SliceQuery) -> RetryReport:
        return retry_queries.retries(self._fresh(), query)

    def routing(self, query: SliceQuery, margin: float = 0.05) -> RoutingReport:
        return routing.routing(self._fresh(), query, margin)

    def run_search(self, query: RunSearchQuery) -> RunPage:
        return searching.run_search(self._fresh(), query)

    def budget_days(self, query: BudgetQuery) -> list[BreachDay]:
        """Runs and budget breaches per UTC day of the runs' start, for the overview's trend.

        ``query.limit`` does not apply: every day of the window is counted.
        """
        # Imported here: budget_queries builds on queries, which imports this module.
        from agentledger.collector.budget_queries import run_totals_sql, run_where

        params: dict[str, Any] = {"project": query.project}
        head = run_totals_sql(run_where(query.workflow, query.since, query.until, params))
        rows = self._fresh().query(
            head
            + """
SELECT toString(toDate(start_time, 'UTC')) AS day, count() AS runs,
       countIf(over_tokens OR over_usd) AS breached_runs
FROM run_totals GROUP BY day ORDER BY day""",
            params,
        )
        return [
            BreachDay(day=str(day), runs=int(runs), breached_runs=int(breached))
            for day, runs, breached in rows
        ]

    def sql(self, sql: str, max_rows: int = SQL_MAX_ROWS) -> SqlResult:
        """One read-only query through the same guards as ``POST /api/v1/sql``."""
        return adhoc.run_read_only(self._fresh(), sql, max_rows)

    def sql_refusal(self) -> str | None:
        # The reader has no viewer: the collector wraps it in auth.ScopedReader, which
        # applies the access rule of each request.
        return None
