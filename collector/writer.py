"""Batched inserts into the store, from any number of threads, by one writer thread.

Rows wait in a buffer that is flushed when it holds ``max_rows``, when its oldest rows have
waited ``flush_interval_seconds``, or at once when a caller is waiting for its rows (group
commit: requests that arrive during one insert share the next). Each submission gets a
future that completes when its rows are in the store. :meth:`RowWriter.flush` waits for
everything submitted so far: readers call it (through the rollups) so that they see every
row that was acknowledged before they asked. Span rows may come as lists or as
Arrow tables already typed for the ``spans`` table (from the ingest workers); one flush
inserts them all as one block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import pyarrow as pa

from agentledger.collector.mapping import OUTCOME_COLUMNS, SPAN_COLUMNS
from agentledger.collector.store import Store

logger = logging.getLogger(__name__)


class WriterClosed(RuntimeError):
    """Rows were submitted after the writer was closed."""


class RowWriter:
    """Buffers ``spans`` and ``outcomes`` rows and inserts them in batches.

    Args:
        store: Where the rows go; the writer does not close it.
        max_rows: Buffered rows that trigger a flush.
        flush_interval_seconds: Longest time a row waits when nobody waits for it.
    """

    def __init__(
        self, store: Store, *, max_rows: int = 20_000, flush_interval_seconds: float = 1.0
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows!r}")
        if flush_interval_seconds <= 0:
            raise ValueError(f"flush_interval_seconds must be > 0, got {flush_interval_seconds!r}")
        self._store = store
        self._max_rows = max_rows
        self._interval = flush_interval_seconds
        self._cond = threading.Condition()
        self._spans: list[Sequence[Any]] = []
        self._span_blocks: list[pa.Table] = []
        self._rows = 0
        self._outcomes: list[Sequence[Any]] = []
        self._futures: list[Future[None]] = []
        # Rows of the batch being inserted.
        self._inserting_rows = 0
        # Batches taken from the buffer, and batches whose insert (and callbacks) finished:
        # a batch is being inserted while the first is ahead.
        self._taken = 0
        self._finished = 0
        self._urgent = False
        self._oldest = 0.0
        self._closing = False
        _resolve_driver_imports()
        self._thread = threading.Thread(target=self._run, name="agentledger-writer", daemon=True)
        self._thread.start()

    def submit(
        self,
        spans: Sequence[Sequence[Any]] | pa.Table,
        outcomes: Sequence[Sequence[Any]] = (),
        *,
        urgent: bool = True,
    ) -> Future[None]:
        """Queue rows; the future completes once they are stored, or fails with the error.

        ``urgent`` rows are flushed as soon as the writer is free; others wait for the size
        or the interval.
        """
        future: Future[None] = Future()
        span_count = spans.num_rows if isinstance(spans, pa.Table) else len(spans)
        if not span_count and not outcomes:
            future.set_result(None)
            return future
        with self._cond:
            if self._closing:
                raise WriterClosed("the writer is closed; rows were not stored")
            if not self._rows:
                self._oldest = time.monotonic()
            if isinstance(spans, pa.Table):
                self._span_blocks.append(spans)
            else:
                self._spans.extend(spans)
            self._outcomes.extend(outcomes)
            self._rows += span_count + len(outcomes)
            self._futures.append(future)
            self._urgent = self._urgent or urgent
            self._cond.notify_all()
        return future

    def write(
        self,
        spans: Sequence[Sequence[Any]] | pa.Table,
        outcomes: Sequence[Sequence[Any]] = (),
        *,
        timeout: float | None = None,
    ) -> None:
        """Store rows and return when they are stored; raise the store's error if not."""
        self.submit(spans, outcomes).result(timeout)

    @property
    def backlog_rows(self) -> int:
        """Rows submitted and not yet stored, the batch being inserted included."""
        with self._cond:
            return self._rows + self._inserting_rows

    def flush(self, timeout: float | None = 60.0) -> None:
        """Return once every row submitted before the call is stored, or failed to be.

        A failure is the submitter's to handle (its future carries it); here it only ends
        the wait.
        """
        with self._cond:
            # Batches are inserted one after the other: wait for the one that holds the
            # newest row, and for its callbacks (the spool's bookkeeping) to have run.
            if self._futures:
                target = self._taken + 1
            elif self._taken > self._finished:
                target = self._taken
            else:
                return
            self._urgent = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._finished >= target, timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush every buffered row and stop the writer thread."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("writer did not finish within %.1f s; buffered rows may be lost", timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._ready():
                    self._cond.wait(self._wait_seconds())
                if self._closing and not self._futures:
                    return
                spans, self._spans = self._spans, []
                blocks, self._span_blocks = self._span_blocks, []
                outcomes, self._outcomes = self._outcomes, []
                futures, self._futures = self._futures, []
                self._inserting_rows = self._rows
                self._taken += 1
                self._rows = 0
                self._urgent = False
            self._flush(spans, blocks, outcomes, futures)
            with self._cond:
                self._inserting_rows = 0
                self._finished += 1
                self._cond.notify_all()

    def _ready(self) -> bool:
        """Whether to flush now (or stop); called with the lock held."""
        if not self._futures:
            return self._closing
        return (
            self._urgent
            or self._closing
            or self._rows >= self._max_rows
            or time.monotonic() - self._oldest >= self._interval
        )

    def _wait_seconds(self) -> float | None:
        if not self._futures:
            return None
        return max(0.0, self._oldest + self._interval - time.monotonic())

    def _flush(
        self,
        spans: list[Sequence[Any]],
        blocks: list[pa.Table],
        outcomes: list[Sequence[Any]],
        futures: list[Future[None]],
    ) -> None:
        started = time.perf_counter()
        span_count = len(spans) + sum(block.num_rows for block in blocks)
        try:
            if blocks:
                if spans:
                    blocks.append(self._store.block("spans", spans, SPAN_COLUMNS))
                self._store.insert_block("spans", pa.concat_tables(blocks))
            else:
                self._store.insert("spans", spans, SPAN_COLUMNS)
            self._store.insert("outcomes", outcomes, OUTCOME_COLUMNS)
        except Exception as exc:  # any store failure fails this batch's callers, not the thread
            # The server spooled these rows before submitting them (collector.spool): the
            # callers learn of the failure and the spool replays the rows later.
            logger.error(
                "insert failed: spans=%d outcomes=%d not stored, callers told: %s",
                span_count,
                len(outcomes),
                exc,
            )
            for future in futures:
                future.set_exception(exc)
            return
        logger.debug(
            "inserted spans=%d outcomes=%d requests=%d in %.1f ms",
            span_count,
            len(outcomes),
            len(futures),
            (time.perf_counter() - started) * 1000,
        )
        for future in futures:
            future.set_result(None)


def _resolve_driver_imports() -> None:
    """Make clickhouse-connect import pandas now, in the thread that builds the writer.

    Its first insert imports pandas lazily. Done in the writer or spool thread while the main
    thread imports the dashboard (plotly, which imports pandas too), the two imports race and
    one can see a partially initialised pandas, which stopped a collector from starting when
    it had a spool to replay.
    """
    from clickhouse_connect.driver import options

    options.pd  # noqa: B018  (the attribute access is the import)
