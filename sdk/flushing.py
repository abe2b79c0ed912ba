"""Flushing spans within a deadline, whatever state the collector is in.

The OpenTelemetry batch processor's ``force_flush`` exports in the caller's thread and does
not honour its timeout: with the collector down, it would hold the agent for as long as the
exporter keeps retrying. :class:`BoundedFlusher` runs it on a helper thread instead, and the
caller waits for it at most its own deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)


class BoundedFlusher:
    """Runs a flush function on one helper thread; callers wait at most their timeout.

    Requests are numbered. A flush that starts after a request was made covers it, so one
    slow flush answers every request that arrived before it began, and requests never pile
    up threads.
    """

    def __init__(self, flush: Callable[[], object], *, name: str = "agentledger-flush") -> None:
        self._flush = flush
        self._name = name
        self._cond = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._running_since: float | None = None
        self._closed = False
        self._thread: threading.Thread | None = None

    def flush(self, timeout_seconds: float, *, wait_if_stalled: bool = True) -> bool:
        """Request a flush and wait until it is done or ``timeout_seconds`` have passed.

        Args:
            timeout_seconds: the longest this call waits.
            wait_if_stalled: when False and a flush has already been running for longer
                than ``timeout_seconds`` (the collector is likely down), return at once
                instead of waiting again; the request still stands.

        Returns:
            True when a flush that started after this request has completed.
        """
        with self._cond:
            if self._closed:
                return False
            self._requested += 1
            ticket = self._requested
            self._ensure_worker()
            self._cond.notify_all()

            running_since = self._running_since
            stalled = (
                running_since is not None and time.monotonic() - running_since > timeout_seconds
            )
            if stalled and not wait_if_stalled:
                logger.debug(
                    "agentledger: a flush has been running for over %.1fs; not waiting again",
                    timeout_seconds,
                )
                return False
            self._cond.wait_for(lambda: self._completed >= ticket or self._closed, timeout_seconds)
            return self._completed >= ticket

    def close(self) -> None:
        """Stop the helper thread after its current flush; later requests return False."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _ensure_worker(self) -> None:
        # is_alive() also covers a forked child, where the parent's thread does not exist.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._requested > self._completed)
                if self._closed:
                    return
                target = self._requested
                self._running_since = time.monotonic()

            try:
                self._flush()
            except Exception:  # broad: a failed flush must not kill the helper thread
                logger.warning("agentledger: flush failed; spans may be lost", exc_info=True)

            with self._cond:
                self._completed = target
                self._running_since = None
                self._cond.notify_all()


class HealthTrackingExporter(SpanExporter):
    """Wraps an exporter and remembers whether its last export reached the collector.

    A run's end waits for its spans only while exports succeed: once one fails (the
    collector is down or refusing), later runs end at once and their spans go out with the
    next batch, so an outage never holds the agent at every run.
    """

    def __init__(self, exporter: SpanExporter) -> None:
        self._exporter = exporter
        self.healthy = True

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._exporter.export(spans)
        except Exception:  # broad: an exporter bug must not reach the batch worker
            logger.warning(
                "agentledger: export failed; %d spans dropped", len(spans), exc_info=True
            )
            result = SpanExportResult.FAILURE
        self.healthy = result is SpanExportResult.SUCCESS
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)
