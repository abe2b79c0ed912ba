"""The headline metrics that the step × tier view can colour by: label, value and text."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agentledger.dashboard import formatting
from agentledger.dashboard.formatting import Shown
from agentledger.schemas.api import MetricsRow


@dataclass(frozen=True)
class Headline:
    """One metric of a ``MetricsRow``, as the heatmap colours it and the table shows it.

    Attributes:
        key: the ``MetricsRow`` field, also the value of the heatmap's metric selector.
        label: the name people read.
        shown: the formatted value with its reason when undefined.
        scale: how the colour bar labels its ticks: ``usd``, ``percent`` or ``multiple``.
    """

    key: str
    label: str
    shown: Callable[[MetricsRow], Shown]
    scale: str

    def value(self, row: MetricsRow) -> float | None:
        """The raw value, for colour only; the text always comes from ``shown``."""
        raw = getattr(row, self.key)
        return None if raw is None else float(raw)


HEADLINES: tuple[Headline, ...] = (
    Headline(
        "cost_per_correct_outcome_usd",
        "Cost per correct outcome",
        formatting.cost_per_correct_outcome,
        "usd",
    ),
    Headline(
        "reingestion_overhead",
        "Re-ingestion overhead",
        formatting.reingestion_overhead,
        "percent",
    ),
    Headline(
        "retry_amplification",
        "Retry amplification (tokens)",
        formatting.retry_amplification,
        "multiple",
    ),
    Headline(
        "cost_retry_amplification",
        "Retry amplification (cost)",
        formatting.cost_retry_amplification,
        "multiple",
    ),
)

DEFAULT_HEADLINE = HEADLINES[0].key


def headline(key: str | None) -> Headline:
    """The headline named ``key``; the default one for an unknown key."""
    for candidate in HEADLINES:
        if candidate.key == key:
            return candidate
    return HEADLINES[0]
