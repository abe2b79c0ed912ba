"""Routes of the budget features: ``GET /api/v1/budgets`` and the Prometheus ``/metrics``."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response

from agentledger.collector.api import LedgerJSONResponse, _utc, _window_error
from agentledger.schemas.api import BudgetQuery, BudgetReport, LedgerReader

logger = logging.getLogger(__name__)

PROMETHEUS_EXTRA_HINT = (
    "/metrics needs prometheus-client, part of the server extra: pip install 'agentledger[server]'"
)


def budget_router(reader: LedgerReader) -> APIRouter:
    """``/api/v1/budgets`` and ``/metrics``, reading through ``reader``."""
    router = APIRouter()

    @router.get(
        "/api/v1/budgets",
        response_model=BudgetReport,
        response_class=LedgerJSONResponse,
        summary="Budget breaches, budget use by workflow and alert states; see docs/budgets.md",
    )
    def budgets(
        workflow: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        project: Annotated[str, Query(min_length=1)] = "default",
    ) -> Any:
        since_utc, until_utc = _utc(since), _utc(until)
        if (error := _window_error(since_utc, until_utc)) is not None:
            return error
        query = BudgetQuery(
            project=project,
            workflow=workflow or None,
            since=since_utc,
            until=until_utc,
            limit=limit,
        )
        return LedgerJSONResponse(reader.budgets(query).model_dump())

    @router.get("/metrics", include_in_schema=False)
    def metrics(project: Annotated[str, Query(min_length=1)] = "default") -> Response:
        try:
            from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
            from prometheus_client.registry import CollectorRegistry

            from agentledger.collector.prometheus import LedgerCollector
        except ImportError:
            return PlainTextResponse(PROMETHEUS_EXTRA_HINT, status_code=501)
        # A registry per scrape: the figures belong to the project asked for, and nothing
        # of this process (its own memory or CPU) is mixed in.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(LedgerCollector(reader, project))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
