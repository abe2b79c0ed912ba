"""Retries: attempts, retried instances and the cost of discarded attempts per step and
tier, and how many attempts the instances of each step took.

Read from the ``step_attempts`` view. An instance is retried when it has more than one
attempt on any tier; it counts in the slice of every tier it had an attempt on. A model
filter keeps the runs that made a call on that model.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agentledger.collector.slicing import ratio, run_conditions
from agentledger.collector.store import Store
from agentledger.schemas.analysis import AttemptCount, RetryReport, RetrySlice, SliceQuery


def retries(store: Store, query: SliceQuery) -> RetryReport:
    params: dict[str, Any] = {}
    where = run_conditions(query, params, "run_start")
    if query.model is not None:
        params["model"] = query.model
        where.append(
            "run_id IN (SELECT run_id FROM llm_calls"
            " WHERE project = {project:String} AND model = {model:String})"
        )
    outer = "1"
    if query.tier is not None:
        params["tier"] = query.tier
        outer = "tier = {tier:String}"
    # n: attempts of the instance on every tier, counted before the tier filter applies.
    attempts = (
        "SELECT *, count() OVER (PARTITION BY instance) AS n"
        f" FROM step_attempts WHERE {' AND '.join(where)}"
    )
    slices = store.query_dicts(
        f"""
SELECT
    step, tier,
    uniqExact(instance) AS instances,
    count() AS attempts,
    uniqExactIf(instance, n > 1) AS retried_instances,
    countIf(NOT accepted) AS discarded_attempts,
    sumIf(input_tokens + output_tokens, NOT accepted) AS discarded_tokens,
    sumIf(cost_usd, NOT accepted) AS discarded_cost
FROM ({attempts}) WHERE {outer}
GROUP BY step, tier ORDER BY step, tier""",
        params,
    )
    distribution = store.query_dicts(
        f"""
SELECT step, n AS attempts, uniqExact(instance) AS instances
FROM ({attempts}) WHERE {outer}
GROUP BY step, attempts ORDER BY step, attempts""",
        params,
    )
    return RetryReport(
        slices=[
            RetrySlice(
                step=row["step"],
                tier=row["tier"],
                instances=row["instances"],
                attempts=row["attempts"],
                retried_instances=row["retried_instances"],
                retry_rate=ratio(row["retried_instances"], row["instances"]),
                discarded_attempts=row["discarded_attempts"],
                discarded_tokens=row["discarded_tokens"],
                discarded_cost_usd=Decimal(row["discarded_cost"]),
            )
            for row in slices
        ],
        distribution=[AttemptCount(**row) for row in distribution],
    )
