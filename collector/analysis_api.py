"""The analysis API behind the dashboard's pages: ``/api/v1/tails``, ``/reingestion``,
``/retries``, ``/routing``, ``/run_search`` and ``/dimensions``.

Each takes the filters every page shares (``workflow``, ``model``, ``tier``, ``since``,
``until``, ``project``, an empty value meaning no filter), so that a test asks the API with
the page's own query string and gets the numbers the page shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from agentledger.collector.api import LedgerJSONResponse, bad_parameter
from agentledger.schemas.analysis import (
    AnalysisReader,
    Dimensions,
    ReingestionReport,
    RetryReport,
    RoutingReport,
    RunSearchQuery,
    SliceQuery,
    TailReport,
)
from agentledger.schemas.api import RunPage

_BAD = {400: {"description": "A parameter has a value that is not accepted."}}


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def slice_params(
    workflow: str | None = None,
    model: str | None = None,
    tier: str | None = None,
    since: Annotated[datetime | None, Query(description="runs started at or after (UTC)")] = None,
    until: Annotated[datetime | None, Query(description="runs started before (UTC)")] = None,
    project: Annotated[str, Query(min_length=1)] = "default",
) -> SliceQuery | JSONResponse:
    """The shared filters, or a 400 answer when ``until`` is not after ``since``."""
    since_utc, until_utc = _utc(since), _utc(until)
    if since_utc is not None and until_utc is not None and until_utc <= since_utc:
        message = f"until {until_utc.isoformat()!r} is not after since {since_utc.isoformat()!r}"
        return bad_parameter("until", until_utc.isoformat(), message)
    return SliceQuery(
        project=project,
        workflow=workflow or None,
        model=model or None,
        tier=tier or None,
        since=since_utc,
        until=until_utc,
    )


Slice = Annotated[SliceQuery | JSONResponse, Depends(slice_params)]


def analysis_router(reader: AnalysisReader) -> APIRouter:
    """The analysis routes, reading through ``reader``."""
    router = APIRouter(prefix="/api/v1", default_response_class=LedgerJSONResponse)

    def answer(value: Any) -> Any:
        return LedgerJSONResponse(value.model_dump())

    @router.get("/dimensions", response_model=Dimensions)
    def dimensions(project: Annotated[str, Query(min_length=1)] = "default") -> Any:
        return answer(reader.dimensions(project))

    @router.get("/tails", response_model=TailReport, responses=_BAD)
    def tails(query: Slice) -> Any:
        return query if isinstance(query, JSONResponse) else answer(reader.tails(query))

    @router.get("/reingestion", response_model=ReingestionReport, responses=_BAD)
    def reingestion(query: Slice) -> Any:
        return query if isinstance(query, JSONResponse) else answer(reader.reingestion(query))

    @router.get("/retries", response_model=RetryReport, responses=_BAD)
    def retries(query: Slice) -> Any:
        return query if isinstance(query, JSONResponse) else answer(reader.retries(query))

    @router.get("/routing", response_model=RoutingReport, responses=_BAD)
    def routing(
        query: Slice,
        margin: Annotated[
            float, Query(ge=0.0, le=1.0, description="share, 0.05 = 5 points")
        ] = 0.05,
    ) -> Any:
        if isinstance(query, JSONResponse):
            return query
        return answer(reader.routing(query, margin))

    @router.get("/run_search", response_model=RunPage, responses=_BAD)
    def run_search(
        query: Slice,
        step: str | None = None,
        search: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        if isinstance(query, JSONResponse):
            return query
        found = RunSearchQuery(
            **query.model_dump(),
            step=step or None,
            search=search or None,
            limit=limit,
            offset=offset,
        )
        return answer(reader.run_search(found))

    return router
