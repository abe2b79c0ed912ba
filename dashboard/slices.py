"""Step × tier slices of the metrics API: the order and the names in which pages show them."""

from __future__ import annotations

from dataclasses import dataclass

from agentledger.schemas.api import MetricsRow

# Tiers read from cheap to expensive; any other tier follows in alphabetical order.
TIER_ORDER = ("small", "mid", "frontier")
NO_TIER = "(no tier)"
NO_STEP = "(outside steps)"
# The API groups by the call's model; tool calls (and a model call whose provider named no
# model) have the model "", which would read as a blank row or point.
NO_MODEL = "(tool calls, no model)"


def tier_label(tier: str | None) -> str:
    return tier or NO_TIER


def step_label(step: str | None) -> str:
    return step or NO_STEP


def model_label(model: str | None) -> str:
    """The name a model group shows under; the API's ``""`` group is labelled, not blank."""
    return model or NO_MODEL


def _tier_rank(tier: str) -> tuple[int, int, str]:
    if tier in TIER_ORDER:
        return (0, TIER_ORDER.index(tier), "")
    if tier == "":
        return (2, 0, "")
    return (1, 0, tier)


def _step_rank(step: str) -> tuple[int, str]:
    return (1 if step == "" else 0, step)


@dataclass(frozen=True)
class Grid:
    """Rows of a step × tier query laid out as a grid; ``cells[(step, tier)]`` is the row."""

    steps: list[str]
    tiers: list[str]
    cells: dict[tuple[str, str], MetricsRow]

    def ordered_rows(self) -> list[MetricsRow]:
        return [
            self.cells[(step, tier)]
            for step in self.steps
            for tier in self.tiers
            if (step, tier) in self.cells
        ]


def grid(rows: list[MetricsRow]) -> Grid:
    """Lay out rows grouped by step and tier: steps by name, tiers from small to frontier."""
    cells = {(row.step or "", row.tier or ""): row for row in rows}
    steps = sorted({step for step, _ in cells}, key=_step_rank)
    tiers = sorted({tier for _, tier in cells}, key=_tier_rank)
    return Grid(steps, tiers, cells)
