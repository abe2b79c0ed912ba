"""A Prometheus ``/metrics`` view of the ledger, computed from the store at scrape time.

The figures are those of the API, read through the same ``LedgerReader`` when Prometheus
scrapes: ``GET /api/v1/metrics?group_by=workflow,tier`` for spend, tokens, runs, correct runs
and unpriced calls, and ``GET /api/v1/budgets`` for the runs over their own budget (by
workflow only: a run that ran on several tiers would count once per tier, so a sum over
tiers would exceed the runs that breached) and the alerts firing.

Spend and tokens only grow with ingest, so they are counters. Runs per (workflow, tier) are
exposed as counters too, since runs only arrive; correct runs are a gauge, because a late
verdict can turn a correct run incorrect. A slice whose cost is unknown (only unpriced calls)
has no spend sample: unknown is not zero.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agentledger.schemas.api import BudgetQuery, LedgerReader, MetricsQuery

logger = logging.getLogger(__name__)

#: How many alerts the firing gauge looks at (the latest state of each, newest first).
ALERTS_SCANNED = 1000


class LedgerCollector(Collector):
    """Yields the ledger's figures of one project each time the registry is collected."""

    def __init__(self, reader: LedgerReader, project: str = "default") -> None:
        self._reader = reader
        self._project = project

    def collect(self) -> Iterator[Metric]:
        tier_labels = ["project", "workflow", "tier"]
        spend = CounterMetricFamily(
            "agentledger_spend_usd", "Known cost of the usage spans, USD.", labels=tier_labels
        )
        tokens = CounterMetricFamily(
            "agentledger_tokens",
            "Tokens of the model calls; direction is input (cache included) or output.",
            labels=[*tier_labels, "direction"],
        )
        runs = CounterMetricFamily(
            "agentledger_runs", "Runs with something in the slice.", labels=tier_labels
        )
        correct = GaugeMetricFamily(
            "agentledger_correct_runs", "Runs whose latest verdict is correct.", labels=tier_labels
        )
        unpriced = CounterMetricFamily(
            "agentledger_unpriced_calls", "Model calls without a known price.", labels=tier_labels
        )
        query = MetricsQuery(project=self._project, group_by=["workflow", "tier"])
        for row in self._reader.metrics(query):
            labels = [self._project, row.workflow or "", row.tier or ""]
            if row.cost_usd is not None:
                spend.add_metric(labels, float(row.cost_usd))
            tokens.add_metric([*labels, "input"], row.input_tokens)
            tokens.add_metric([*labels, "output"], row.output_tokens)
            runs.add_metric(labels, row.runs)
            correct.add_metric(labels, row.correct_runs)
            unpriced.add_metric(labels, row.unpriced_calls)

        breaches = CounterMetricFamily(
            "agentledger_budget_breached_runs",
            "Runs whose tokens or known cost went over their own budget.",
            labels=["project", "workflow"],
        )
        firing = GaugeMetricFamily(
            "agentledger_alerts_firing",
            "Collector alerts whose latest state is firing, by rule.",
            labels=["project", "rule"],
        )
        report = self._reader.budgets(BudgetQuery(project=self._project, limit=ALERTS_SCANNED))
        for use in report.workflows:
            breaches.add_metric([self._project, use.workflow], use.breached_runs)
        by_rule = Counter(alert.rule for alert in report.alerts if alert.state == "firing")
        for rule in sorted({alert.rule for alert in report.alerts}):
            firing.add_metric([self._project, rule], by_rule[rule])

        yield from (spend, tokens, runs, correct, unpriced, breaches, firing)
