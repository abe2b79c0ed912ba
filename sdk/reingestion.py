"""Re-ingested tokens: input tokens that a call re-reads from earlier in the same run.

A value that the caller records wins. Runs opened with ``reingestion="carry-forward"``
estimate it for chat-loop agents, which re-send the whole conversation on every call:
call k of the run gets ``min(input_k, input_(k-1) + output_(k-1))``, and the first call
gets 0. Otherwise the count stays unknown (the attribute is absent), never guessed.

"Call k" counts the calls of the run that recorded usage, in the order they recorded it.
"""

from __future__ import annotations

import threading
from typing import Final, Literal

EXPLICIT: Final = "explicit"
CARRY_FORWARD: Final = "carry-forward"
MODES: Final = (EXPLICIT, CARRY_FORWARD)

Mode = Literal["explicit", "carry-forward"]

# What a call knows of the call before it: nothing yet (it is the first), the previous
# call's input and output tokens, or None when either of those was unknown.
_FIRST: Final = "first"
Baseline = tuple[int, int] | Literal["first"] | None


class CarryForward:
    """The carry-forward estimate over the calls of one run; safe across threads."""

    __slots__ = ("_last", "_last_call", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: Baseline = _FIRST
        self._last_call: object | None = None

    def baseline(self, call: object) -> Baseline:
        """Claim the next place in the run's sequence for ``call``; returns what precedes it."""
        with self._lock:
            previous = self._last
            self._last_call = call
            return previous

    def record(self, call: object, input_tokens: int | None, output_tokens: int | None) -> None:
        """Remember the usage of ``call`` for the call after it, if it is still the latest."""
        with self._lock:
            if self._last_call is not call:
                return
            if input_tokens is None or output_tokens is None:
                self._last = None
            else:
                self._last = (input_tokens, output_tokens)


def estimate(baseline: Baseline, input_tokens: int | None) -> int | None:
    """The carry-forward estimate of a call, from its baseline and its own input tokens."""
    if input_tokens is None or baseline is None:
        return None
    if baseline == _FIRST:
        return 0
    previous_input, previous_output = baseline
    return min(input_tokens, previous_input + previous_output)
