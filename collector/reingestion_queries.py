"""Re-ingestion: how the input of a run's model calls grows, call by call, and how much of
it was read before; and the re-ingested tokens and cost of each step and tier.

A call's position is its place among its run's model calls in start order (1 = first). The
re-ingested cost of a call is its cost shared out by token count, ``cost × reingested ÷
(input + output)``: the store keeps one cost per call, not an input and an output price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agentledger.collector.slicing import call_where, ratio
from agentledger.collector.store import Store
from agentledger.schemas.analysis import (
    ReingestionPosition,
    ReingestionReport,
    ReingestionSlice,
    SliceQuery,
)

#: Positions past this one are summed into it, so that one long run does not stretch the chart.
MAX_POSITION = 60


def reingestion(store: Store, query: SliceQuery) -> ReingestionReport:
    params: dict[str, Any] = {}
    calls = call_where(query, params)
    # The window function needs every call of a run, so the sums run on its output.
    sums = store.query_dicts(
        f"""
SELECT
    pos AS position,
    count() AS calls,
    sum(c_input) AS input_tokens,
    sum(ifNull(c_reingested, 0)) AS reingested_tokens,
    sumIf(c_input, c_reingested IS NOT NULL) - sum(ifNull(c_reingested, 0)) AS fresh_tokens,
    sumIf(c_input, c_reingested IS NULL) AS unknown_tokens,
    sum(c_cached) AS cached_tokens
FROM (
    SELECT
        least(row_number() OVER (PARTITION BY run_id ORDER BY start_time, span_id),
              {MAX_POSITION}) AS pos,
        ifNull(input_tokens, 0) AS c_input,
        reingested_tokens AS c_reingested,
        ifNull(cached_tokens, 0) AS c_cached
    FROM llm_calls WHERE {calls}
)
GROUP BY pos ORDER BY pos""",
        params,
    )

    # Aliases differ from the view's column names: ClickHouse would read a column name in
    # another expression as the alias.
    slices = store.query_dicts(
        f"""
SELECT
    step AS s_step, tier AS s_tier,
    count() AS s_calls,
    sum(ifNull(input_tokens, 0)) AS s_input,
    sum(ifNull(reingested_tokens, 0)) AS s_reingested,
    sumIf(ifNull(input_tokens, 0), reingested_tokens IS NOT NULL) AS s_reingest_base,
    sum(ifNull(cached_tokens, 0)) AS s_cached,
    sumIf(
        assumeNotNull(cost_usd) * ifNull(reingested_tokens, 0)
            / (ifNull(input_tokens, 0) + ifNull(output_tokens, 0)),
        cost_usd IS NOT NULL AND ifNull(input_tokens, 0) + ifNull(output_tokens, 0) > 0
    ) AS s_reingested_cost,
    countIf(cost_usd IS NOT NULL) AS s_priced
FROM llm_calls WHERE {calls}
GROUP BY s_step, s_tier ORDER BY s_step, s_tier""",
        params,
    )
    return ReingestionReport(
        positions=[ReingestionPosition(**row) for row in sums],
        slices=[
            ReingestionSlice(
                step=row["s_step"],
                tier=row["s_tier"],
                calls=row["s_calls"],
                input_tokens=row["s_input"],
                reingested_tokens=row["s_reingested"],
                cached_tokens=row["s_cached"],
                reingestion_overhead=ratio(row["s_reingested"], row["s_reingest_base"]),
                cached_share=ratio(row["s_cached"], row["s_input"]),
                reingested_cost_usd=(
                    Decimal(row["s_reingested_cost"]) if row["s_priced"] else None
                ),
            )
            for row in slices
        ],
    )
