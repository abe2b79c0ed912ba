"""Text for the numbers of the API: the only place where the dashboard turns a value into words.

Every figure on a page is an API value, rounded for reading and nothing more. An undefined
value (``None``) reads as an em dash with the reason it is undefined, never NaN or an error;
a cost that leaves out unpriced calls reads as a lower bound ("≥ $1.20").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from agentledger.schemas.api import MetricsRow

UNDEFINED = "—"

NO_RUNS = "no runs in this window"
NO_VERDICT = "no run has a verdict yet"
NO_CORRECT = "no correct outcome in this window"
NO_CALLS = "no calls in this window"
NOT_REPORTED = "not reported by the API"


@dataclass(frozen=True)
class Shown:
    """A value as the dashboard shows it.

    Attributes:
        text: what the page shows.
        note: why the value is undefined, or what it leaves out; shown beside or on hover.
        exact: the unrounded value, for a tooltip.
        href: where the value links to, if anywhere.
        tone: ``good``, ``bad`` or ``neutral`` to show the value as a coloured badge.
    """

    text: str
    note: str | None = None
    exact: str | None = None
    href: str | None = None
    tone: str | None = None

    @property
    def undefined(self) -> bool:
        return self.text == UNDEFINED

    @property
    def tooltip(self) -> str | None:
        return self.note or self.exact


def undefined(reason: str) -> Shown:
    """An undefined value with the reason it is undefined."""
    return Shown(UNDEFINED, note=reason)


# --- plain values -------------------------------------------------------------------------


def usd_text(value: Decimal) -> str:
    """Dollars with at least two decimals and three significant digits: $1,234.50, $0.180,
    $0.000700."""
    magnitude = abs(value)
    if magnitude == 0:
        return "$0.00"
    decimals = max(2, 2 - math.floor(math.log10(magnitude)))
    sign = "-" if value < 0 else ""
    return f"{sign}${magnitude:,.{decimals}f}"


def usd(
    value: Decimal | None,
    *,
    complete: bool = True,
    unpriced_calls: int | None = None,
    reason: str,
) -> Shown:
    """A cost; ``reason`` explains a ``None``. An incomplete cost is a lower bound."""
    if value is None:
        return undefined(reason)
    exact = f"${value}"
    if complete:
        return Shown(usd_text(value), exact=exact)
    return Shown(f"≥ {usd_text(value)}", note=unpriced_note(unpriced_calls), exact=exact)


def unpriced_note(unpriced_calls: int | None) -> str:
    if unpriced_calls is None:
        return "leaves out unpriced calls"
    noun = "call" if unpriced_calls == 1 else "calls"
    return f"leaves out {count_text(unpriced_calls)} unpriced {noun}"


def count_text(value: int) -> str:
    return f"{value:,}"


def tokens(value: int | None, *, reason: str = "not reported") -> Shown:
    """A token count; ``None`` means the provider did not report it."""
    if value is None:
        return undefined(reason)
    return Shown(count_text(value))


def percent(value: float | None, *, reason: str) -> Shown:
    """A share in 0..1 as a percentage with one decimal."""
    if value is None or not math.isfinite(value):
        return undefined(reason)
    return Shown(f"{value * 100:.1f}%", exact=repr(value))


def multiple(value: float | None, *, reason: str) -> Shown:
    """A ratio such as retry amplification: 1.00×."""
    if value is None or not math.isfinite(value):
        return undefined(reason)
    return Shown(f"{value:.2f}×", exact=repr(value))


def as_utc(moment: datetime) -> datetime:
    """The API speaks UTC; a naive datetime from it is UTC, not local time."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def timestamp(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(span: timedelta) -> str:
    """A duration for people: 350 ms, 4.2 s, 3 min 05 s, 2 h 07 min."""
    seconds = span.total_seconds()
    if seconds < 0:
        return UNDEFINED
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# --- metrics of a MetricsRow --------------------------------------------------------------


def runs(row: MetricsRow) -> Shown:
    return Shown(count_text(row.runs))


def spend(row: MetricsRow) -> Shown:
    reason = "no priced calls" if row.unpriced_calls else NO_CALLS
    return usd(
        row.cost_usd,
        complete=row.cost_complete,
        unpriced_calls=row.unpriced_calls,
        reason=reason,
    )


def cost_per_correct_outcome(row: MetricsRow) -> Shown:
    if row.runs == 0:
        reason = NO_RUNS
    elif row.known_runs == 0:
        reason = NO_VERDICT
    elif row.correct_runs == 0:
        reason = NO_CORRECT
    else:
        reason = "no priced calls in runs with a verdict"
    return usd(
        row.cost_per_correct_outcome_usd,
        complete=row.cost_complete,
        unpriced_calls=row.unpriced_calls,
        reason=reason,
    )


def outcome_coverage(row: MetricsRow) -> Shown:
    return percent(row.outcome_coverage, reason=NO_RUNS if row.runs == 0 else NOT_REPORTED)


def success_rate(row: MetricsRow) -> Shown:
    if row.runs == 0:
        reason = NO_RUNS
    elif row.known_runs == 0:
        reason = NO_VERDICT
    else:
        reason = NOT_REPORTED
    return percent(row.success_rate, reason=reason)


def reingestion_overhead(row: MetricsRow) -> Shown:
    reason = NO_CALLS if row.calls == 0 else "no calls with a known re-ingested token count"
    return percent(row.reingestion_overhead, reason=reason)


def retry_amplification(row: MetricsRow) -> Shown:
    reason = NO_CALLS if row.calls == 0 else "no tokens in accepted attempts"
    return multiple(row.retry_amplification, reason=reason)


def cost_retry_amplification(row: MetricsRow) -> Shown:
    reason = NO_CALLS if row.calls == 0 else "no priced cost in accepted attempts"
    return multiple(row.cost_retry_amplification, reason=reason)


def unpriced_calls(row: MetricsRow) -> Shown:
    return Shown(count_text(row.unpriced_calls))


def correct_of_known(row: MetricsRow) -> Shown:
    """Correct runs out of the runs with a verdict: "3 / 4"."""
    return Shown(f"{count_text(row.correct_runs)} / {count_text(row.known_runs)}")
