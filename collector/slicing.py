"""The shared filters of the analysis queries, as conditions over the ad-hoc SQL views.

The views (``schemas/sql/003_views.sql``) already resolve runs, attempts, acceptance and
verdicts as ``docs/metrics.md`` defines them, so the analysis queries filter and aggregate
them rather than repeat those rules. Values are bound as ``{name:Type}`` parameters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from agentledger.schemas.analysis import SliceQuery

_TIME = "DateTime64(9, 'UTC')"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run_conditions(query: SliceQuery, params: dict[str, Any], start: str) -> list[str]:
    """Project, workflow and window of run starts; ``start`` names the run-start column."""
    params["project"] = query.project
    where = ["project = {project:String}"]
    if query.workflow is not None:
        where.append("workflow = {workflow:String}")
        params["workflow"] = query.workflow
    if query.since is not None:
        where.append(f"{start} >= {{since:{_TIME}}}")
        params["since"] = _utc(query.since)
    if query.until is not None:
        where.append(f"{start} < {{until:{_TIME}}}")
        params["until"] = _utc(query.until)
    return where


def call_where(query: SliceQuery, params: dict[str, Any]) -> str:
    """The condition on ``llm_calls`` for the shared filters: the call's model and tier."""
    where = run_conditions(query, params, "run_start")
    if query.model is not None:
        where.append("model = {model:String}")
        params["model"] = query.model
    if query.tier is not None:
        where.append("tier = {tier:String}")
        params["tier"] = query.tier
    return " AND ".join(where)


def run_where(query: SliceQuery, params: dict[str, Any]) -> str:
    """The condition on ``runs``: with a model or tier filter, the runs that made such a call."""
    where = run_conditions(query, params, "start_time")
    if query.model is not None or query.tier is not None:
        where.append(f"run_id IN (SELECT run_id FROM llm_calls WHERE {call_where(query, params)})")
    return " AND ".join(where)


def ratio(numerator: int | Decimal | None, denominator: int | Decimal | None) -> float | None:
    """``numerator / denominator``, or None when the denominator is zero or unknown."""
    if numerator is None or not denominator:
        return None
    return float(Decimal(numerator) / Decimal(denominator))


def per(total: Decimal | None, count: int) -> Decimal | None:
    """Money per item; None without items or without a known total."""
    if total is None or not count:
        return None
    return Decimal(total) / count
