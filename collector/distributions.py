"""Tails: the distribution of cost and tokens per run, the runs in the tail, and how well
predicted token counts match the tokens used.

A quantile is ClickHouse's ``quantileExact``: the value at 0-based position ``floor(q * n)``
of the n sorted values (the last one when that is past the end). A run's cost and tokens are
its totals from the ``runs`` view; runs whose cost is unknown stay out of the cost figures.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from agentledger.collector.slicing import call_where, run_where
from agentledger.collector.store import Store
from agentledger.schemas.analysis import (
    PredictionPoint,
    SliceQuery,
    TailReport,
    TailRow,
    TailRun,
)

#: Tail runs listed at most, costliest first.
TAIL_RUNS = 50
#: Calls with a prediction sent for plotting at most; the correlation uses all of them.
PREDICTION_SAMPLE = 2_000


def tails(store: Store, query: SliceQuery) -> TailReport:
    """Quantiles per workflow, the runs at or above their workflow's p95 of cost, and
    predicted against actual tokens of the calls that carried a prediction."""
    params: dict[str, Any] = {}
    runs = run_where(query, params)
    rows = store.query_dicts(
        f"""
SELECT
    workflow,
    count() AS runs,
    countIf(cost_usd IS NOT NULL) AS priced_runs,
    quantilesExactIf(0.5, 0.95, 0.99)(assumeNotNull(cost_usd), cost_usd IS NOT NULL) AS cq,
    maxIf(assumeNotNull(cost_usd), cost_usd IS NOT NULL) AS cmax,
    quantilesExact(0.5, 0.95, 0.99)(total_tokens) AS tq,
    max(total_tokens) AS tmax
FROM runs WHERE {runs}
GROUP BY workflow ORDER BY workflow""",
        params,
    )
    workflows = [_tail_row(row) for row in rows]

    tail_rows = store.query_dicts(
        f"""
WITH
chosen AS (SELECT * FROM runs WHERE {runs}),
edge AS (
    SELECT workflow, quantileExact(0.95)(assumeNotNull(cost_usd)) AS p95
    FROM chosen WHERE cost_usd IS NOT NULL GROUP BY workflow
)
SELECT c.run_id AS run_id, c.workflow AS workflow, c.start_time AS start_time,
       c.outcome AS outcome, c.total_tokens AS total_tokens, c.cost_usd AS cost_usd
FROM chosen AS c INNER JOIN edge AS e ON e.workflow = c.workflow
WHERE c.cost_usd IS NOT NULL AND c.cost_usd >= e.p95
ORDER BY c.cost_usd DESC, c.run_id LIMIT {TAIL_RUNS}""",
        params,
    )
    tail_runs = [TailRun(**row) for row in tail_rows]

    call_params: dict[str, Any] = {}
    calls = call_where(query, call_params) + " AND predicted_tokens IS NOT NULL"
    actual = "ifNull(input_tokens, 0) + ifNull(output_tokens, 0)"
    count, correlation = store.query(
        f"SELECT count(), corr(toFloat64(predicted_tokens), toFloat64({actual}))"
        f" FROM llm_calls WHERE {calls}",
        call_params,
    )[0]
    points = store.query_dicts(
        f"SELECT run_id, model, tier, predicted_tokens, {actual} AS actual_tokens"
        f" FROM llm_calls WHERE {calls}"
        f" ORDER BY cityHash64(span_id) LIMIT {PREDICTION_SAMPLE}",
        call_params,
    )
    return TailReport(
        workflows=workflows,
        tail_runs=tail_runs,
        predicted_calls=int(count),
        prediction_correlation=(
            float(correlation) if count >= 2 and math.isfinite(correlation) else None
        ),
        predictions=[PredictionPoint(**point) for point in points],
    )


def _tail_row(row: dict[str, Any]) -> TailRow:
    priced = int(row["priced_runs"])
    runs = int(row["runs"])
    cost = [Decimal(value) for value in row["cq"]] if priced else [None, None, None]
    tokens = [int(value) for value in row["tq"]] if runs else [None, None, None]
    return TailRow(
        workflow=row["workflow"],
        runs=runs,
        priced_runs=priced,
        cost_p50_usd=cost[0],
        cost_p95_usd=cost[1],
        cost_p99_usd=cost[2],
        cost_max_usd=Decimal(row["cmax"]) if priced else None,
        tokens_p50=tokens[0],
        tokens_p95=tokens[1],
        tokens_p99=tokens[2],
        tokens_max=int(row["tmax"]) if runs else None,
    )
