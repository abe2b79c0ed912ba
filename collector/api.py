"""The query API: ``/api/v1/metrics``, ``/api/v1/runs``, ``/api/v1/runs/{run_id}`` and
``/api/v1/budgets/by_day``.

Money is sent as a JSON number written from the exact ``Decimal`` (never through a float),
so that clients can compute with it; an undefined figure is ``null``. A bad parameter is
answered with 400 (or FastAPI's 422 for a wrong type), naming the parameter and its value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from agentledger.schemas.analysis import AnalysisReader, BreachDay
from agentledger.schemas.api import (
    GROUP_KEYS,
    BudgetQuery,
    GroupKey,
    LedgerReader,
    MetricsQuery,
    MetricsRow,
    RunDetail,
    RunPage,
    RunsQuery,
)

_BAD_PARAMETER = {"description": "A parameter has a value that is not accepted."}
_GROUP_BY_HELP = "group keys among workflow, step, tier, model, day; comma-separated or repeated"
_SINCE_HELP = "runs that started at or after this time (UTC when it has no zone)"
_UNTIL_HELP = "runs that started before this time (UTC when it has no zone)"


class LedgerJSONResponse(JSONResponse):
    """JSON with exact decimals as numbers and datetimes in ISO 8601; never NaN."""

    def render(self, content: Any) -> bytes:
        return encode_json(content).encode("utf-8")


def encode_json(value: Any) -> str:
    """Serialise API content: ``Decimal`` as a plain JSON number, non-finite numbers as null.

    The standard encoder writes ``Decimal`` only through ``float`` or as a string; writing the
    digits ourselves keeps every digit the store holds.
    """
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, Decimal):
        # The readers never produce a non-finite figure; null keeps the output valid if one did.
        return format(value.normalize(), "f") if value.is_finite() else "null"
    if isinstance(value, float):
        return json.dumps(value) if math.isfinite(value) else "null"
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, date):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(k))}:{encode_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(encode_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} value {value!r} as JSON")


def bad_parameter(name: str, value: object, message: str) -> JSONResponse:
    """A 400 answer shaped like FastAPI's validation errors: location, input, message."""
    detail = [{"type": "value_error", "loc": ["query", name], "input": value, "msg": message}]
    return JSONResponse({"detail": detail}, status_code=400)


def parse_group_by(values: Sequence[str]) -> list[GroupKey]:
    """Group keys from repeated and comma-separated ``group_by`` values, first order kept.

    Raises:
        ValueError: a key that is not one of ``GROUP_KEYS``, naming it.
    """
    keys: list[GroupKey] = []
    for value in values:
        for part in value.split(","):
            key = part.strip()
            if not key:
                continue
            if key not in GROUP_KEYS:
                raise ValueError(f"group key {key!r} is not one of {list(GROUP_KEYS)!r}")
            if key not in keys:
                keys.append(cast(GroupKey, key))
    return keys


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _window_error(since: datetime | None, until: datetime | None) -> JSONResponse | None:
    if since is None or until is None or since < until:
        return None
    message = f"until {until.isoformat()!r} is not after since {since.isoformat()!r}"
    return bad_parameter("until", until.isoformat(), message)


def _filter(value: str | None) -> str | None:
    """An empty filter (``?workflow=``) means no filter."""
    return value if value else None


def api_router(reader: LedgerReader) -> APIRouter:
    """The query routes, reading through ``reader``."""
    router = APIRouter(prefix="/api/v1", default_response_class=LedgerJSONResponse)

    @router.get(
        "/metrics",
        response_model=list[MetricsRow],
        responses={400: _BAD_PARAMETER},
        summary="Metrics of each group; see docs/metrics.md",
    )
    def metrics(
        group_by: Annotated[list[str], Query(description=_GROUP_BY_HELP)] = [],  # noqa: B006
        workflow: str | None = None,
        model: str | None = None,
        tier: str | None = None,
        since: Annotated[datetime | None, Query(description=_SINCE_HELP)] = None,
        until: Annotated[datetime | None, Query(description=_UNTIL_HELP)] = None,
        project: Annotated[str, Query(min_length=1)] = "default",
    ) -> Any:
        try:
            keys = parse_group_by(group_by)
        except ValueError as exc:
            return bad_parameter("group_by", ",".join(group_by), str(exc))
        since_utc, until_utc = _utc(since), _utc(until)
        if (error := _window_error(since_utc, until_utc)) is not None:
            return error
        query = MetricsQuery(
            group_by=keys,
            project=project,
            workflow=_filter(workflow),
            model=_filter(model),
            tier=_filter(tier),
            since=since_utc,
            until=until_utc,
        )
        rows = reader.metrics(query)
        return LedgerJSONResponse([row.model_dump() for row in rows])

    @router.get("/runs", response_model=RunPage, responses={400: _BAD_PARAMETER})
    def runs(
        workflow: str | None = None,
        since: Annotated[datetime | None, Query(description=_SINCE_HELP)] = None,
        until: Annotated[datetime | None, Query(description=_UNTIL_HELP)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
        project: Annotated[str, Query(min_length=1)] = "default",
    ) -> Any:
        since_utc, until_utc = _utc(since), _utc(until)
        if (error := _window_error(since_utc, until_utc)) is not None:
            return error
        query = RunsQuery(
            project=project,
            workflow=_filter(workflow),
            since=since_utc,
            until=until_utc,
            limit=limit,
            offset=offset,
        )
        return LedgerJSONResponse(reader.runs(query).model_dump())

    @router.get(
        "/runs/{run_id}",
        response_model=RunDetail,
        responses={404: {"description": "No run with this id in the project."}},
    )
    def run(run_id: str, project: Annotated[str, Query(min_length=1)] = "default") -> Any:
        detail = reader.run(run_id, project)
        if detail is None:
            message = f"run {run_id!r} not found in project {project!r}"
            return JSONResponse({"detail": message}, status_code=404)
        return LedgerJSONResponse(detail.model_dump())

    @router.get(
        "/budgets/by_day",
        response_model=list[BreachDay],
        responses={400: _BAD_PARAMETER},
        summary="Runs and budget breaches per UTC day of the runs' start; see docs/budgets.md",
    )
    def budget_days(
        workflow: str | None = None,
        since: Annotated[datetime | None, Query(description=_SINCE_HELP)] = None,
        until: Annotated[datetime | None, Query(description=_UNTIL_HELP)] = None,
        project: Annotated[str, Query(min_length=1)] = "default",
    ) -> Any:
        since_utc, until_utc = _utc(since), _utc(until)
        if (error := _window_error(since_utc, until_utc)) is not None:
            return error
        query = BudgetQuery(
            project=project, workflow=_filter(workflow), since=since_utc, until=until_utc
        )
        days = cast(AnalysisReader, reader).budget_days(query)
        return LedgerJSONResponse([day.model_dump() for day in days])

    return router
