"""The ingest spool: rows written durably to local files before a request is acknowledged.

Every accepted request appends one record (its ``spans`` and ``outcomes`` rows) to the open
segment file and fsyncs it before the collector answers 2xx. Once the rows of every record
of a segment are in the store, the segment is deleted. Rows that the store refused stay in
their segment, which :meth:`Spool.replay` inserts again later, and at start-up. Replaying a
record that was already stored is harmless: ``spans`` rows share their
(project, trace_id, span_id) key and queries read through ``FINAL``; outcome rows carry an
``outcome_key``.

A record on disk is ``<length:u32><crc32:u32><payload>``. The payload is either JSON rows, or,
for an OTLP export, the request body itself (``B<JSON header>\n<body>``): writing the bytes
that arrived costs nothing, where encoding the mapped rows cost more than decoding the body.
Such a record is turned back into rows on replay by the ``body_reader`` the spool was given,
which decodes and maps the body as ingest did. A record cut short by a crash was never
fsynced, hence never acknowledged, and is dropped on reading.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    import pyarrow as pa

    from agentledger.collector.writer import RowWriter

logger = logging.getLogger(__name__)

Rows = list[list[Any]]
#: Inserts ``(spans, outcomes)`` into the store, raising when the store refuses them.
InsertRows = Callable[[Rows, Rows], None]
#: Turns a spooled request body and its header back into ``(spans, outcomes)`` rows.
BodyReader = Callable[[bytes, dict[str, str]], tuple[Rows, Rows]]

_HEADER = struct.Struct("<II")
_BODY_TAG = b"B"
_SUFFIX = ".seg"
_LOCK_NAME = "spool.lock"
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_BYTES = 1024 * 1024 * 1024
# Rows inserted at once while replaying, so that a large segment is not held whole in memory.
_REPLAY_CHUNK_ROWS = 20_000


class SpoolError(Exception):
    """The spool cannot be opened or written."""


class SpoolFull(SpoolError):
    """The spool holds its maximum; the request must be retried later."""


@dataclass(slots=True)
class _Segment:
    seq: int
    path: Path
    size: int = 0
    in_flight: int = 0
    #: Some record's rows were not confirmed in the store: replay the whole segment.
    dirty: bool = False
    sealed: bool = False


@dataclass(frozen=True, slots=True)
class SpooledBody:
    """A request body to spool instead of its rows, with what replay needs to map it again.

    ``header`` holds short strings only (the media type, the project a key claimed).
    """

    body: bytes
    header: dict[str, str]


@dataclass(frozen=True, slots=True)
class Ticket:
    """Where one appended record lives; hand it back to :meth:`Spool.done`."""

    seq: int


class Spool:
    """Append-only segment files in one directory, held by one process at a time.

    Args:
        directory: Created when missing; segments left in it by an earlier process are
            replayed by :meth:`replay`.
        max_bytes: Bytes of segments past which :meth:`append` raises :class:`SpoolFull`.
        segment_bytes: Size past which the open segment is sealed and a new one begun.
        body_reader: Maps a spooled request body back to rows on replay; a spool without one
            cannot replay body records (they stay on disk, with an error logged).
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        body_reader: BodyReader | None = None,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes!r}")
        self.directory = Path(directory)
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._body_reader = body_reader
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock_file = open(self.directory / _LOCK_NAME, "a+b")  # noqa: SIM115
        except OSError as exc:
            raise SpoolError(f"spool directory {str(self.directory)!r} unusable: {exc}") from exc
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self._lock_file.close()
            raise SpoolError(
                f"spool directory {str(self.directory)!r} is in use by another process"
            ) from exc

        self._lock = threading.Lock()
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._file: BinaryIO | None = None
        for path in sorted(self.directory.glob("*" + _SUFFIX)):
            try:
                seq = int(path.stem)
            except ValueError:
                logger.warning("spool file ignored: path=%s; not a segment name", path)
                continue
            size = path.stat().st_size
            self._segments[seq] = _Segment(seq, path, size, dirty=True, sealed=True)
        self._next_seq = max(self._segments, default=0) + 1
        if self._segments:
            logger.info(
                "spool found segments to replay: count=%d bytes=%d dir=%s",
                len(self._segments),
                self.bytes,
                self.directory,
            )

    @property
    def bytes(self) -> int:
        """Bytes held in segment files."""
        return sum(s.size for s in list(self._segments.values()))

    @property
    def pending(self) -> int:
        """Segments whose rows are not yet all confirmed in the store."""
        return len(self._segments)

    def append(
        self,
        spans: Sequence[Sequence[Any]],
        outcomes: Sequence[Sequence[Any]],
        *,
        source: SpooledBody | None = None,
    ) -> Ticket:
        """Write one record durably (fsync) and return its ticket.

        With a ``source``, the record holds that request body rather than the rows, which
        must be what the spool's ``body_reader`` makes of it.

        Raises:
            SpoolFull: the spool holds ``max_bytes`` already.
            SpoolError: the record could not be written.
        """
        if source is not None:
            header = json.dumps(source.header, separators=(",", ":")).encode("utf-8")
            if b"\n" in header:  # json.dumps escapes newlines in strings; checked to be sure
                raise SpoolError(f"spool header {source.header!r} holds a newline")
            head = _BODY_TAG + header + b"\n"
            crc = zlib.crc32(source.body, zlib.crc32(head))
            record = b"".join((_HEADER.pack(len(head) + len(source.body), crc), head, source.body))
        else:
            payload = json.dumps({"s": _encode(spans), "o": _encode(outcomes)}).encode("utf-8")
            record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self.bytes + len(record) > self._max_bytes:
                raise SpoolFull(
                    f"the spool holds {self.bytes} bytes, its limit is {self._max_bytes}"
                )
            segment = self._open_segment()
            assert self._file is not None
            try:
                self._file.write(record)
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                # The segment may now end in a partial record: seal it, replay drops the tail.
                segment.dirty = True
                self._seal()
                raise SpoolError(f"spool write failed in {str(segment.path)!r}: {exc}") from exc
            segment.size += len(record)
            segment.in_flight += 1
            if segment.size >= self._segment_bytes:
                self._seal()
        return Ticket(segment.seq)

    def done(self, ticket: Ticket, *, stored: bool) -> None:
        """Report whether the rows of a ticket's record are now in the store."""
        with self._lock:
            segment = self._segments.get(ticket.seq)
            if segment is None:
                return
            segment.in_flight -= 1
            segment.dirty = segment.dirty or not stored
            if segment.in_flight or segment.dirty:
                return
            if segment is self._current:
                self._seal()
            self._delete(segment)

    def replay(self, insert: InsertRows) -> int:
        """Insert the rows of every segment not confirmed in the store; return records replayed.

        A segment is deleted once all its rows were inserted; one the store refuses stays for
        the next call. Raises nothing: failures are logged.
        """
        with self._lock:
            current = self._current
            if current is not None and current.dirty and not current.in_flight:
                self._seal()
            ready = [s for s in self._segments.values() if s.sealed and s.dirty and not s.in_flight]
        replayed = 0
        for segment in sorted(ready, key=lambda s: s.seq):
            try:
                count = self._replay_segment(segment, insert)
            except Exception as exc:  # the store is still unreachable: keep it for later
                logger.warning(
                    "spool replay failed: segment=%s kept for retry: %s", segment.path.name, exc
                )
                return replayed
            replayed += count
            with self._lock:
                self._delete(segment)
            logger.info("spool segment replayed: segment=%s records=%d", segment.path.name, count)
        return replayed

    def close(self) -> None:
        """Close the open segment and release the directory; unconfirmed segments stay."""
        with self._lock:
            self._seal()
            self._lock_file.close()

    # --- internals, called with the lock held --------------------------------------------------

    def _open_segment(self) -> _Segment:
        if self._current is not None:
            return self._current
        seq = self._next_seq
        self._next_seq += 1
        path = self.directory / f"{seq:012d}{_SUFFIX}"
        try:
            self._file = open(path, "xb")  # noqa: SIM115
            # The new name must survive a crash too, or the fsynced records are unreachable.
            _fsync_directory(self.directory)
        except OSError as exc:
            raise SpoolError(f"spool segment {str(path)!r} cannot be created: {exc}") from exc
        segment = _Segment(seq, path)
        self._segments[seq] = segment
        self._current = segment
        return segment

    def _seal(self) -> None:
        if self._current is None:
            return
        self._current.sealed = True
        self._current = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _delete(self, segment: _Segment) -> None:
        self._segments.pop(segment.seq, None)
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass

    def _replay_segment(self, segment: _Segment, insert: InsertRows) -> int:
        records = 0
        spans: Rows = []
        outcomes: Rows = []
        for record_spans, record_outcomes in read_records(segment.path, self._body_reader):
            records += 1
            spans.extend(record_spans)
            outcomes.extend(record_outcomes)
            if len(spans) + len(outcomes) >= _REPLAY_CHUNK_ROWS:
                insert(spans, outcomes)
                spans, outcomes = [], []
        if spans or outcomes:
            insert(spans, outcomes)
        return records


def read_records(path: Path, body_reader: BodyReader | None = None) -> Iterator[tuple[Rows, Rows]]:
    """The ``(spans, outcomes)`` of each complete record of a segment file, in order.

    A cut-short or damaged record ends the reading, with a warning: records are only ever
    appended, so what follows a damaged one cannot be trusted either. A body record is
    mapped by ``body_reader``; without one it raises :class:`SpoolError`, so that the
    segment is kept rather than dropped.
    """
    with open(path, "rb") as file:
        offset = 0
        while header := file.read(_HEADER.size):
            if len(header) < _HEADER.size:
                _warn_tail(path, offset, "header cut short")
                return
            length, crc = _HEADER.unpack(header)
            payload = file.read(length)
            if len(payload) < length or zlib.crc32(payload) != crc:
                _warn_tail(path, offset, "record cut short or damaged")
                return
            if payload[:1] == _BODY_TAG:
                if body_reader is None:
                    raise SpoolError(f"segment {path.name} holds a request body; no reader given")
                end = payload.index(b"\n")
                header = json.loads(payload[1:end])
                yield body_reader(payload[end + 1 :], header)
            else:
                document = json.loads(payload)
                yield _decode(document["s"]), _decode(document["o"])
            offset += _HEADER.size + length


def _warn_tail(path: Path, offset: int, reason: str) -> None:
    logger.warning(
        "spool tail dropped: segment=%s offset=%d reason=%s; such a record was never acknowledged",
        path.name,
        offset,
        reason,
    )


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Row cells are scalars, None or str -> str maps; a Decimal is the one cell JSON cannot carry,
# so it is written as ["d", "digits"] (no other cell is a list).
def _encode(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [[["d", str(c)] if isinstance(c, Decimal) else c for c in row] for row in rows]


def _decode(rows: list[list[Any]]) -> Rows:
    return [[Decimal(c[1]) if isinstance(c, list) else c for c in row] for row in rows]


class SpoolDrainer:
    """A thread that replays the spool at start and then every ``interval_seconds``.

    Args:
        spool: The spool to drain.
        insert: Stores rows, raising when the store refuses them.
        interval_seconds: Wait between two attempts while segments remain.
    """

    def __init__(self, spool: Spool, insert: InsertRows, *, interval_seconds: float = 5.0) -> None:
        self._spool = spool
        self._insert = insert
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="agentledger-spool", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        # Polling is cheap: a replay with nothing to do only takes the spool's lock.
        while not self._stop.is_set():
            self._spool.replay(self._insert)
            self._stop.wait(self._interval)


def default_directory(store_dsn: str) -> Path:
    """Where the spool lives without a setting: beside a chDB store, else in the working dir."""
    if store_dsn.startswith("chdb://"):
        store_dir = Path(store_dsn.removeprefix("chdb://"))
        return store_dir.with_name(store_dir.name + ".spool")
    return Path("agentledger-spool").resolve()


class DurableWriter:
    """Rows go to the spool (fsync) first, then to the store through the writer.

    :meth:`write` returns once the rows are durable in the spool; the writer inserts them
    in large batches, as ClickHouse wants them, and a :class:`SpoolDrainer` replays those
    the store refused. Readers see every acknowledged row, since they flush the writer
    first (``RowWriter.flush``). When the writer holds more than ``max_backlog_rows``,
    a write also waits for its own rows to be stored: ingest slows to the store's pace
    instead of filling memory.
    """

    def __init__(self, spool: Spool, writer: RowWriter, *, max_backlog_rows: int = 40_000):
        self.spool = spool
        self._writer = writer
        self._max_backlog = max_backlog_rows

    async def write(
        self,
        spans: Sequence[Sequence[Any]] | pa.Table,
        outcomes: Sequence[Sequence[Any]] = (),
        *,
        source: SpooledBody | None = None,
    ) -> None:
        """Make rows durable, then hand them to the writer.

        ``source`` is the request body the rows came from, spooled in their place.

        Raises:
            SpoolFull: the spool is full (the store has been unreachable for long).
            SpoolError: the spool cannot be written.
        """
        if not len(spans) and not outcomes:
            return
        ticket = await asyncio.to_thread(self.spool.append, spans, outcomes, source=source)
        try:
            future = self._writer.submit(spans, outcomes, urgent=False)
        except Exception as exc:  # the writer is closed: the spool keeps the rows for replay
            self.spool.done(ticket, stored=False)
            logger.warning("rows kept in spool only: spans=%d reason=%s", len(spans), exc)
            return
        # Settled by the writer's thread, so that a cancelled request cannot leak the ticket.
        future.add_done_callback(lambda done: self._settle(ticket, done))
        if self._writer.backlog_rows <= self._max_backlog:
            return
        try:
            await asyncio.shield(asyncio.wrap_future(future))
        except Exception:  # the store refused the rows: the writer logged it, the spool keeps them
            pass

    def _settle(self, ticket: Ticket, future: Future[None]) -> None:
        # A failed insert was logged by the writer; the record stays for the drainer.
        self.spool.done(ticket, stored=not future.cancelled() and future.exception() is None)
