"""The read side of budgets: each run's totals against its own ceilings, and the alert states.

A run's totals follow ``docs/metrics.md`` (usage spans only, each counted once, through
``FINAL``): tokens = input + output tokens of its model calls, cost = the known cost of its
usage spans (null when it has unpriced calls and nothing priced). Its budgets are the
``agentledger.budget.tokens`` / ``agentledger.budget.usd`` of its run span. A run **breaches**
a budget when its total is strictly over it; an unknown cost breaches nothing.
``docs/budgets.md`` states these rules for users.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Final

from agentledger.collector.queries import _as_utc, _run_window, _utc
from agentledger.collector.rollups import rollups_of
from agentledger.collector.store import Store
from agentledger.schemas.api import (
    AlertRow,
    BudgetBreachRow,
    BudgetQuery,
    BudgetReport,
    BudgetUse,
)

_TIME: Final = "DateTime64(9, 'UTC')"

# One row per run of the window with its totals, budgets and whether it went over them.
_RUN_TOTALS: Final = """
WITH run_totals AS (
    SELECT
        run_id, workflow, start_time, verdict,
        input_tokens + output_tokens AS tokens,
        if(priced_rows = 0 AND unpriced_calls > 0, NULL, toDecimal128(priced_cost, 12))
            AS cost_usd,
        unpriced_calls = 0 AS cost_complete,
        budget_tokens, budget_usd,
        ifNull(budget_tokens IS NOT NULL AND tokens > budget_tokens, 0) AS over_tokens,
        ifNull(budget_usd IS NOT NULL AND cost_usd IS NOT NULL AND cost_usd > budget_usd, 0)
            AS over_usd,
        if(ifNull(budget_tokens, 0) > 0, tokens / budget_tokens, NULL) AS token_use,
        if(ifNull(budget_usd, 0) > 0 AND cost_usd IS NOT NULL,
           toFloat64(cost_usd) / toFloat64(budget_usd), NULL) AS cost_use
    FROM run_rollup FINAL
    WHERE project = {project:String} AND {run_where}
)"""


def run_totals_sql(run_where: str) -> str:
    """A ``WITH`` clause ending in ``run_totals``: one row per run of the rollups matching
    ``run_where`` (a condition on ``run_id``, ``workflow``, ``start_time``).

    Binds ``{project:String}`` plus whatever ``run_where`` names. The caller brings the
    rollups up to date first (``rollups_of(store).catch_up()``).
    """
    return _RUN_TOTALS.replace("{run_where}", run_where)


def run_where(
    workflow: str | None,
    since: datetime | None,
    until: datetime | None,
    params: dict[str, Any],
) -> str:
    """The condition on ``run_rollup`` for a workflow and a window of run starts (UTC)."""
    return _run_window(workflow, since, until, params)


def budget_report(store: Store, query: BudgetQuery) -> BudgetReport:
    """Breaching runs, budget use by workflow and the latest alert states, for ``query``."""
    rollups_of(store).catch_up()
    params: dict[str, Any] = {"project": query.project, "limit": query.limit}
    head = run_totals_sql(run_where(query.workflow, query.since, query.until, params))

    use_rows = store.query_dicts(
        head
        + """
SELECT
    workflow,
    count() AS runs,
    countIf(budget_tokens IS NOT NULL) AS token_budget_runs,
    countIf(budget_usd IS NOT NULL) AS cost_budget_runs,
    countIf(budget_tokens IS NOT NULL OR budget_usd IS NOT NULL) AS budget_runs,
    countIf(over_tokens OR over_usd) AS breached_runs,
    quantileExactInclusive(0.5)(token_use) AS token_use_p50,
    quantileExactInclusive(0.95)(token_use) AS token_use_p95,
    max(token_use) AS token_use_max,
    quantileExactInclusive(0.5)(cost_use) AS cost_use_p50,
    quantileExactInclusive(0.95)(cost_use) AS cost_use_p95,
    max(cost_use) AS cost_use_max
FROM run_totals
GROUP BY workflow
ORDER BY workflow""",
        params,
    )
    workflows = [
        BudgetUse(
            workflow=row["workflow"],
            runs=row["runs"],
            token_budget_runs=row["token_budget_runs"],
            cost_budget_runs=row["cost_budget_runs"],
            budget_runs=row["budget_runs"],
            breached_runs=row["breached_runs"],
            token_use_p50=_share(row, "token_use_p50", row["token_budget_runs"]),
            token_use_p95=_share(row, "token_use_p95", row["token_budget_runs"]),
            token_use_max=_share(row, "token_use_max", row["token_budget_runs"]),
            cost_use_p50=_share(row, "cost_use_p50", row["cost_budget_runs"]),
            cost_use_p95=_share(row, "cost_use_p95", row["cost_budget_runs"]),
            cost_use_max=_share(row, "cost_use_max", row["cost_budget_runs"]),
        )
        for row in use_rows
    ]

    breach_rows = store.query_dicts(
        head
        + """
SELECT * FROM run_totals WHERE over_tokens OR over_usd
ORDER BY start_time DESC, run_id LIMIT {limit:UInt32}""",
        params,
    )
    breaches = [
        BudgetBreachRow(
            run_id=row["run_id"],
            workflow=row["workflow"],
            start_time=_utc(row["start_time"]),
            outcome=row["verdict"] or None,
            tokens=row["tokens"],
            cost_usd=row["cost_usd"],
            cost_complete=bool(row["cost_complete"]),
            budget_tokens=row["budget_tokens"],
            budget_usd=row["budget_usd"],
            over_tokens=bool(row["over_tokens"]),
            over_usd=bool(row["over_usd"]),
            token_use=_float(row["token_use"]),
            cost_use=_float(row["cost_use"]),
        )
        for row in breach_rows
    ]
    return BudgetReport(
        breached_runs=sum(use.breached_runs for use in workflows),
        workflows=workflows,
        breaches=breaches,
        alerts=alert_rows(store, query),
    )


def breached_runs_by_workflow(store: Store, project: str = "default") -> dict[str, int]:
    """Runs over their own budget, all time, per workflow (for ``/metrics``)."""
    rollups_of(store).catch_up()
    params: dict[str, Any] = {"project": project}
    rows = store.query(
        run_totals_sql("1") + "\nSELECT workflow, countIf(over_tokens OR over_usd) FROM run_totals"
        " GROUP BY workflow ORDER BY workflow",
        params,
    )
    return {str(workflow): int(count) for workflow, count in rows}


# The latest transition of each alert.
_LATEST_ALERTS: Final = """
SELECT * FROM (
    SELECT * FROM alerts FINAL
    WHERE project = {project:String} {extra}
    ORDER BY alert_key, changed_at DESC
    LIMIT 1 BY alert_key
)"""


def alert_rows(store: Store, query: BudgetQuery) -> list[AlertRow]:
    """The latest state of each alert, newest change first: those of ``query.workflow``
    (when given) whose latest change falls in the window."""
    params: dict[str, Any] = {"project": query.project, "limit": query.limit}
    extra = []
    if query.workflow is not None:
        extra.append("AND workflow = {workflow:String}")
        params["workflow"] = query.workflow
    if query.since is not None:
        extra.append(f"AND changed_at >= {{since:{_TIME}}}")
        params["since"] = _as_utc(query.since)
    if query.until is not None:
        extra.append(f"AND changed_at < {{until:{_TIME}}}")
        params["until"] = _as_utc(query.until)
    sql = (
        _LATEST_ALERTS.replace("{extra}", " ".join(extra))
        + "\nORDER BY changed_at DESC, alert_key LIMIT {limit:UInt32}"
    )
    return [
        AlertRow(
            rule=row["rule"],
            kind=row["kind"],
            state=row["state"],
            workflow=row["workflow"],
            run_id=row["run_id"],
            unit=row["unit"],
            threshold=row["threshold"],
            actual=row["actual"],
            fired_at=_utc(row["fired_at"]),
            changed_at=_utc(row["changed_at"]),
            message=row["message"],
        )
        for row in store.query_dicts(sql, params)
    ]


def _share(row: dict[str, Any], key: str, runs: int) -> float | None:
    # Without a run carrying that budget the figure is undefined, whatever ClickHouse gives
    # for an aggregate over no values (0 or NaN depending on the function).
    if not runs:
        return None
    return _float(row[key])


def _float(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number
