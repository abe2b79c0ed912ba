"""Worker processes that decode and map OTLP export bodies, so that ingest uses every core.

Decoding protobuf and mapping spans to rows is Python work that holds the GIL: in the
serving process it would share one core with HTTP and the store writer. Each worker builds
its own :class:`~agentledger.collector.mapping.SpanMapper` from the collector settings, and
returns the span rows as an Arrow table already typed for the ``spans`` table: it pickles as
Arrow buffers, and goes into the store without another conversion in the serving process.

The workers never touch the store, so the one-process rule of a chDB directory holds. A
worker that dies is replaced; the request it held is answered 503, and its exporter retries.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
import weakref
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread

from agentledger.collector import auth, columnar, otlp
from agentledger.collector.mapping import SPAN_COLUMNS, SpanMapper

if TYPE_CHECKING:
    import pyarrow as pa

    from agentledger.collector.settings import CollectorSettings

logger = logging.getLogger(__name__)

#: Worker processes on a machine of this many cores or more; fewer cores, one per core.
MAX_DEFAULT_WORKERS: Final = 4


def default_workers() -> int:
    """One worker per core this process may run on, at most :data:`MAX_DEFAULT_WORKERS`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(MAX_DEFAULT_WORKERS, cores or 1)


class WorkersUnavailable(Exception):
    """A worker died while it held the request; the request may be sent again."""


@dataclass(slots=True)
class DecodedExport:
    """One export request, decoded and mapped.

    ``spans`` is an Arrow table typed for the ``spans`` table when a worker mapped it, and
    a list of rows in :data:`~agentledger.collector.mapping.SPAN_COLUMNS` order otherwise.
    """

    spans: pa.Table | list[list[Any]]
    span_count: int
    outcomes: list[list[Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    #: The body after its content encoding, which the spool keeps.
    plain: bytes = b""


def decode_export(
    body: bytes,
    encoding: str | None,
    media: str,
    max_bytes: int,
    principal: auth.Principal,
    mapper: SpanMapper,
    span_types: list[pa.DataType] | None = None,
) -> DecodedExport:
    """Decompress, decode and map one export body; spans as Arrow when given the types.

    Raises:
        otlp.OtlpError: the body cannot be read at all.
    """
    plain = otlp.decompress(body, encoding, max_bytes)
    decoded = otlp.decode(plain, media)
    auth.claim_resources(decoded, principal)
    batch = mapper.map(decoded)
    spans: pa.Table | list[list[Any]] = batch.spans
    if span_types is not None and batch.spans:
        spans = columnar.arrow_table(batch.spans, SPAN_COLUMNS, span_types)
    return DecodedExport(spans, len(batch.spans), batch.outcomes, batch.rejected, plain)


#: Requests decoded and mapped at once in the serving process, without ingest workers.
#: Decoding holds the GIL, so more threads than cores only take it from the writer thread
#: and hold more bodies in memory.
DECODE_THREADS: Final = 2
_decode_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _decode_limiter() -> anyio.CapacityLimiter:
    """The decode limiter of the running event loop (a limiter belongs to one loop)."""
    loop = asyncio.get_running_loop()
    limiter = _decode_limiters.get(loop)
    if limiter is None:
        limiter = _decode_limiters[loop] = anyio.CapacityLimiter(DECODE_THREADS)
    return limiter


class ExportDecoder:
    """Decodes export bodies in the ingest workers, or in threads when there are none.

    Args:
        mapper: The mapper of the serving process, used when ``workers`` is None (and by
            spool replay); workers build their own from the same settings.
        workers: The pool, or None to decode in at most :data:`DECODE_THREADS` threads.
        max_bytes: Largest body, before and after decompression.
    """

    def __init__(self, mapper: SpanMapper, workers: IngestWorkers | None, max_bytes: int) -> None:
        self._mapper = mapper
        self._workers = workers
        self.max_bytes = max_bytes

    async def decode(
        self, body: bytes, encoding: str | None, media: str, principal: auth.Principal
    ) -> DecodedExport:
        """:func:`decode_export` of one body, with the errors :meth:`IngestWorkers.decode`
        raises."""
        if self._workers is not None:
            return await self._workers.decode(body, encoding, media, self.max_bytes, principal)
        return await anyio.to_thread.run_sync(
            decode_export,
            body,
            encoding,
            media,
            self.max_bytes,
            principal,
            self._mapper,
            limiter=_decode_limiter(),
        )


class IngestWorkers:
    """A pool of worker processes running :func:`decode_export`.

    Args:
        settings: The collector's settings; each worker builds its mapper from them (tier
            map, price file, dialect rules) as the serving process would.
        span_types: Arrow types of :data:`SPAN_COLUMNS`, read from the store's table.
        processes: How many workers; they start with :meth:`start` or the first request.
    """

    def __init__(
        self, settings: CollectorSettings, span_types: list[pa.DataType], processes: int
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be >= 1, got {processes!r}")
        self._settings = settings
        self._span_types = span_types
        self._processes = processes
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._started: list[Future[None]] = []

    async def decode(
        self,
        body: bytes,
        encoding: str | None,
        media: str,
        max_bytes: int,
        principal: auth.Principal,
    ) -> DecodedExport:
        """:func:`decode_export` in a worker.

        Raises:
            otlp.OtlpError: the body cannot be read at all.
            WorkersUnavailable: the worker died; a new pool serves the next request.
        """
        pool = self._current()[0]
        try:
            decoded: DecodedExport = await asyncio.get_running_loop().run_in_executor(
                pool, _decode_in_worker, body, encoding, media, max_bytes, principal
            )
        except BrokenProcessPool as exc:
            self._replace(pool)
            logger.error("ingest worker died: request answered 503, workers restarted: %s", exc)
            raise WorkersUnavailable("an ingest worker died while decoding the request") from exc
        if not decoded.plain:  # the body had no content encoding: it is its own plain form
            decoded.plain = body
        return decoded

    def start(self, timeout: float = 60.0) -> None:
        """Start the worker processes now, and return once each has imported what it needs
        (or ``timeout`` passed), rather than let the first requests wait for them."""
        ready = self._current()[1]
        done, pending = wait(ready, timeout)
        if pending or any(future.exception() for future in done):
            logger.warning("ingest workers: not all started within %.0f s", timeout)

    def close(self) -> None:
        """Stop the workers, letting them finish the requests they hold."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _current(self) -> tuple[ProcessPoolExecutor, list[Future[None]]]:
        """The pool, and the futures of the tasks that started its processes."""
        with self._lock:
            if self._pool is None:
                # spawn, not fork: the serving process holds chDB, threads and sockets that a
                # forked child must not inherit.
                self._pool = ProcessPoolExecutor(
                    self._processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self._settings, self._span_types, os.getpid()),
                )
                # The pool starts a process per task while none is idle: start them all now
                # rather than one at a time under the first burst.
                self._started = [self._pool.submit(_ready) for _ in range(self._processes)]
            return self._pool, self._started

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=False, cancel_futures=True)


# --- inside a worker process ------------------------------------------------------------------

_worker: dict[str, Any] = {}


#: How often a worker checks that the serving process is still there.
PARENT_CHECK_SECONDS: Final = 0.5


def _start_worker(
    settings: CollectorSettings, span_types: list[pa.DataType], parent_pid: int
) -> None:
    from agentledger.collector.pricing import Pricer

    # A serving process that was killed cannot stop its workers, and they would wait on
    # their task queue for ever, holding its stdout: they leave as soon as it is gone.
    threading.Thread(
        target=_exit_without, args=(parent_pid,), name="agentledger-parent", daemon=True
    ).start()

    if not logging.getLogger().handlers:  # the pricer's and mapper's warnings, as in serve
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )

    _worker["mapper"] = SpanMapper(
        tier_map=settings.tiers(),
        pricer=Pricer(price_file=settings.prices()),
        context_rules=settings.context_rules(),
    )
    _worker["span_types"] = span_types


def _ready() -> None:
    """A task that does nothing: submitted to make the pool start its processes."""


def _exit_without(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(1)


def _decode_in_worker(
    body: bytes, encoding: str | None, media: str, max_bytes: int, principal: auth.Principal
) -> DecodedExport:
    mapper: SpanMapper = _worker["mapper"]
    decoded = decode_export(
        body, encoding, media, max_bytes, principal, mapper, _worker["span_types"]
    )
    if decoded.plain is body:
        decoded.plain = b""  # not sent back: the serving process has the body already
    return decoded
