"""The analysis queries of the dashboard's pages, composed into ``StoreReader``.

Each concept lives in its own module over the ad-hoc SQL views; this mixin only hands them
the store, so that ``StoreReader`` gains them by inheriting it.
"""

from __future__ import annotations

from agentledger.collector import distributions, reingestion_queries, retry_queries, routing
from agentledger.collector import run_search as searching
from agentledger.collector.store import Store
from agentledger.schemas.analysis import (
    Dimensions,
    ReingestionReport,
    RetryReport,
    RoutingReport,
    RunSearchQuery,
    SliceQuery,
    TailReport,
)
from agentledger.schemas.api import RunPage


class AnalysisQueries:
    """The ``AnalysisReader`` methods over ``self._store``."""

    _store: Store

    def workflows(self, project: str = "default") -> list[str]:
        raise NotImplementedError  # provided by StoreReader

    def dimensions(self, project: str = "default") -> Dimensions:
        return searching.dimensions(self._store, self.workflows(project), project)

    def tails(self, query: SliceQuery) -> TailReport:
        return distributions.tails(self._store, query)

    def reingestion(self, query: SliceQuery) -> ReingestionReport:
        return reingestion_queries.reingestion(self._store, query)

    def retries(self, query: SliceQuery) -> RetryReport:
        return retry_queries.retries(self._store, query)

    def routing(self, query: SliceQuery, margin: float = 0.05) -> RoutingReport:
        return routing.routing(self._store, query, margin)

    def run_search(self, query: RunSearchQuery) -> RunPage:
        return searching.run_search(self._store, query)
