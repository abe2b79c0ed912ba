"""The run search behind the dashboard's run list: the shared filters, a step, and text
found in the run id or the workflow; and the values the filter bar offers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agentledger.collector.slicing import run_conditions
from agentledger.collector.store import Store
from agentledger.schemas.analysis import Dimensions, RunSearchQuery
from agentledger.schemas.api import RunPage, RunSummary


def run_search(store: Store, query: RunSearchQuery) -> RunPage:
    """Runs newest first. With a step or tier, a run matches when it ran that step on that
    tier, also in an attempt without calls; with a model, when it made a call on it."""
    params: dict[str, Any] = {}
    where = run_conditions(query, params, "start_time")
    calls = ["project = {project:String}"]
    attempts = ["project = {project:String}"]
    for name in ("model", "tier", "step"):
        value = getattr(query, name)
        if value is None:
            continue
        params[name] = value
        calls.append(f"{name} = {{{name}:String}}")
        if name != "model":
            attempts.append(f"{name} = {{{name}:String}}")
    if len(calls) > 1:
        matched = f"run_id IN (SELECT run_id FROM llm_calls WHERE {' AND '.join(calls)})"
        if query.model is None:
            matched = (
                f"({matched} OR run_id IN"
                f" (SELECT run_id FROM step_attempts WHERE {' AND '.join(attempts)}))"
            )
        where.append(matched)
    if query.search:
        params["search"] = query.search
        where.append(
            "(positionCaseInsensitiveUTF8(run_id, {search:String}) > 0"
            " OR positionCaseInsensitiveUTF8(workflow, {search:String}) > 0)"
        )
    condition = " AND ".join(where)

    total = int(store.query(f"SELECT count() FROM runs WHERE {condition}", params)[0][0])
    params["limit"] = query.limit
    params["offset"] = query.offset
    rows = store.query_dicts(
        f"""
SELECT run_id, workflow, start_time, end_time, outcome, calls, input_tokens, output_tokens,
       cost_usd, cost_complete, budget_tokens, budget_usd
FROM runs WHERE {condition}
ORDER BY start_time DESC, run_id
LIMIT {{limit:UInt32}} OFFSET {{offset:UInt32}}""",
        params,
    )
    runs = [
        RunSummary(
            **{**row, "start_time": _utc(row["start_time"]), "end_time": _utc(row["end_time"])}
        )
        for row in rows
    ]
    return RunPage(total=total, limit=query.limit, offset=query.offset, runs=runs)


def dimensions(store: Store, workflows: list[str], project: str) -> Dimensions:
    """Models and tiers named on any span of the project, beside the given workflows."""
    params = {"project": project}
    models = store.query(
        "SELECT DISTINCT model FROM spans WHERE project = {project:String} AND model != ''"
        " AND kind IN ('llm', '') ORDER BY model",
        params,
    )
    tiers = store.query(
        "SELECT DISTINCT tier FROM spans WHERE project = {project:String} AND tier != ''"
        " ORDER BY tier",
        params,
    )
    return Dimensions(
        workflows=workflows,
        models=[str(row[0]) for row in models],
        tiers=[str(row[0]) for row in tiers],
    )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
