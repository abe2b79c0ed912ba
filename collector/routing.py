"""Routing: the decision table (task complexity × output sensitivity × context length) with
what each tier achieved in each cell, the cheapest tier whose success rate is within a margin
of the best, and cost against accuracy per tier and model.

A cell's runs are the runs that made a model call scored with that cell's axes on that
tier; its success rate is ``correct / known`` over them and its cost per correct outcome
is the cost of those calls in runs with a verdict, divided by the correct runs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agentledger.collector.slicing import call_where, ratio
from agentledger.collector.store import Store
from agentledger.schemas.analysis import (
    ModelPoint,
    RoutingCell,
    RoutingReport,
    RoutingRow,
    SliceQuery,
)

_FIGURES = """
    count() AS calls,
    uniqExact(c.run_id) AS runs,
    uniqExactIf(c.run_id, v.outcome IS NOT NULL) AS known_runs,
    uniqExactIf(c.run_id, v.correct) AS correct_runs,
    sumIf(assumeNotNull(c.cost_usd), c.cost_usd IS NOT NULL) AS cost,
    countIf(c.cost_usd IS NOT NULL) AS priced,
    countIf(c.unpriced) AS unpriced,
    sumIf(assumeNotNull(c.cost_usd), c.cost_usd IS NOT NULL AND v.outcome IS NOT NULL)
        AS judged_cost,
    countIf(c.cost_usd IS NOT NULL AND v.outcome IS NOT NULL) AS judged_priced,
    countIf(c.unpriced AND v.outcome IS NOT NULL) AS judged_unpriced"""


def routing(store: Store, query: SliceQuery, margin: float = 0.05) -> RoutingReport:
    """The decision table and the per-model points; ``margin`` is a share, 0.05 = 5 points."""
    if not 0.0 <= margin <= 1.0:
        raise ValueError(f"margin={margin!r} is not a share in 0..1")
    params: dict[str, Any] = {}
    head = f"""
WITH
c AS (SELECT * FROM llm_calls WHERE {call_where(query, params)}),
v AS (
    SELECT run_id, outcome, correct FROM runs
    WHERE project = {{project:String}} AND run_id IN (SELECT run_id FROM c)
)"""
    cells = store.query_dicts(
        head
        + f"""
SELECT c.task_complexity AS complexity, c.task_sensitivity AS sensitivity,
       c.task_context AS context, c.tier AS tier,{_FIGURES}
FROM c LEFT JOIN v ON v.run_id = c.run_id
GROUP BY complexity, sensitivity, context, tier
ORDER BY complexity, sensitivity, context, tier""",
        params,
    )
    points = store.query_dicts(
        head
        + f"""
SELECT c.tier AS tier, c.model AS model,{_FIGURES}
FROM c LEFT JOIN v ON v.run_id = c.run_id
GROUP BY tier, model ORDER BY tier, model""",
        params,
    )

    rows: dict[tuple[str, str, str], list[RoutingCell]] = {}
    for row in cells:
        key = (row["complexity"], row["sensitivity"], row["context"])
        rows.setdefault(key, []).append(RoutingCell(tier=row["tier"], **_figures(row)))
    return RoutingReport(
        margin=margin,
        rows=[_decide(key, tiers, margin) for key, tiers in rows.items()],
        models=[ModelPoint(tier=p["tier"], model=p["model"], **_figures(p)) for p in points],
    )


def _figures(row: dict[str, Any]) -> dict[str, Any]:
    correct = int(row["correct_runs"])
    judged = _known(row["judged_cost"], row["judged_priced"], row["judged_unpriced"])
    return {
        "calls": row["calls"],
        "runs": row["runs"],
        "known_runs": row["known_runs"],
        "correct_runs": correct,
        "success_rate": ratio(correct, row["known_runs"]),
        "cost_usd": _known(row["cost"], row["priced"], row["unpriced"]),
        "cost_per_correct_outcome_usd": judged / correct
        if correct and judged is not None
        else None,
    }


def _known(cost: Decimal, priced: int, unpriced: int) -> Decimal | None:
    if priced == 0 and unpriced > 0:
        return None
    return Decimal(cost)


def _decide(key: tuple[str, str, str], tiers: list[RoutingCell], margin: float) -> RoutingRow:
    """Mark the cheapest tier (by cost per correct outcome) whose success rate is within
    ``margin`` of the best success rate of the row."""
    rated = [cell for cell in tiers if cell.success_rate is not None]
    best = max((cell.success_rate for cell in rated), default=None)
    reason = None
    chosen: RoutingCell | None = None
    if best is None:
        reason = "no run of this cell has a verdict"
    else:
        close = [
            cell
            for cell in rated
            if cell.success_rate is not None
            and cell.success_rate >= best - margin - 1e-12
            and cell.cost_per_correct_outcome_usd is not None
        ]
        if close:
            chosen = min(close, key=lambda cell: cell.cost_per_correct_outcome_usd or Decimal(0))
        else:
            reason = "no tier within the margin has a correct outcome with a known cost"
    if chosen is not None:
        chosen.recommended = True
    return RoutingRow(
        complexity=key[0],
        sensitivity=key[1],
        context=key[2],
        tiers=tiers,
        best_success_rate=best,
        recommended_tier=chosen.tier if chosen is not None else None,
        reason=reason,
    )
