"""Deterministic span and trace ids for replayed runs.

The collector de-duplicates spans on (project, trace id, span id). When a replay (an import,
the demo) derives every id from stable names instead of drawing them at random, sending the
same data twice stores nothing new.
"""

from __future__ import annotations

import hashlib

from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import INVALID_SPAN_ID, INVALID_TRACE_ID

__all__ = ["DeterministicIdGenerator", "span_id_for", "trace_id_for"]


def _digest_int(text: str, bits: int) -> int:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[: bits // 8], "big")


def trace_id_for(run_id: str) -> int:
    """The 128-bit trace id of a run: the first 16 bytes of sha256(run id)."""
    value = _digest_int(run_id, 128)
    # An all-zero id is invalid in OpenTelemetry; the odds are 2**-128, but stay correct.
    return value if value != INVALID_TRACE_ID else 1


def span_id_for(run_id: str, label: str) -> int:
    """The 64-bit span id of the span named ``label`` in a run: 8 bytes of sha256."""
    value = _digest_int(f"{run_id}:{label}", 64)
    return value if value != INVALID_SPAN_ID else 1


class DeterministicIdGenerator(IdGenerator):
    """An ``IdGenerator`` whose ids derive from the run id and a label set before each span.

    Call :meth:`begin_run` before starting a run span and :meth:`next_span` before each
    span inside it. If a span starts without a fresh label (for example a span started by
    code that the replay does not control), the generator appends a counter to the last
    label, so that ids stay unique and still deterministic for a deterministic replay.

    Not thread-safe: one replay drives one generator from one thread.
    """

    def __init__(self) -> None:
        self._run_id = ""
        self._label = ""
        self._uses = 0

    def begin_run(self, run_id: str) -> None:
        """Make the next trace id the one of ``run_id``, and its next span the run span."""
        self._run_id = run_id
        self.next_span("run")

    def next_span(self, label: str) -> None:
        """Name the next span of the current run, e.g. ``"3:step"`` or ``"3:llm"``."""
        self._label = label
        self._uses = 0

    def generate_trace_id(self) -> int:
        return trace_id_for(self._run_id)

    def generate_span_id(self) -> int:
        label = self._label if self._uses == 0 else f"{self._label}#{self._uses}"
        self._uses += 1
        return span_id_for(self._run_id, label)
