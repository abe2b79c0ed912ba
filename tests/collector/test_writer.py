"""The batching writer, against a recording store injected in place of ClickHouse."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from agentledger.collector.mapping import OUTCOME_COLUMNS, SPAN_COLUMNS
from agentledger.collector.writer import RowWriter, WriterClosed


class RecordingStore:
    """Keeps every insert; fails the next ``fail`` inserts."""

    def __init__(self) -> None:
        self.inserts: list[tuple[str, list[Any], tuple[str, ...]]] = []
        self.fail = 0
        self.lock = threading.Lock()

    def insert(self, table: str, rows: Sequence[Any], columns: Sequence[str]) -> None:
        with self.lock:
            if self.fail:
                self.fail -= 1
                raise ConnectionError("store down")
            if rows:
                self.inserts.append((table, list(rows), tuple(columns)))

    def rows(self, table: str) -> list[Any]:
        with self.lock:
            return [row for t, rows, _ in self.inserts if t == table for row in rows]


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


def test_write_returns_once_the_rows_are_stored(store: RecordingStore) -> None:
    writer = RowWriter(store, flush_interval_seconds=60)  # type: ignore[arg-type]

    writer.write([["s1"]], [["o1"]], timeout=10)

    assert store.inserts == [
        ("spans", [["s1"]], SPAN_COLUMNS),
        ("outcomes", [["o1"]], OUTCOME_COLUMNS),
    ]
    writer.close()


def test_rows_nobody_waits_for_are_batched_until_the_interval(store: RecordingStore) -> None:
    writer = RowWriter(store, flush_interval_seconds=0.3)  # type: ignore[arg-type]

    futures = [writer.submit([[f"s{i}"]], urgent=False) for i in range(3)]
    stored_early = store.rows("spans")
    for future in futures:
        future.result(timeout=10)

    assert stored_early == []
    assert len(store.inserts) == 1
    assert store.rows("spans") == [["s0"], ["s1"], ["s2"]]
    writer.close()


def test_a_full_buffer_is_flushed_without_waiting_for_the_interval(
    store: RecordingStore,
) -> None:
    writer = RowWriter(store, max_rows=4, flush_interval_seconds=60)  # type: ignore[arg-type]

    started = time.monotonic()
    writer.submit([["a"], ["b"]], urgent=False)
    writer.submit([["c"], ["d"]], urgent=False).result(timeout=10)

    assert time.monotonic() - started < 10
    assert store.rows("spans") == [["a"], ["b"], ["c"], ["d"]]
    writer.close()


def test_close_flushes_what_is_buffered(store: RecordingStore) -> None:
    writer = RowWriter(store, flush_interval_seconds=60)  # type: ignore[arg-type]
    future = writer.submit([["late"]], urgent=False)

    writer.close()

    assert future.done() and future.exception() is None
    assert store.rows("spans") == [["late"]]
    with pytest.raises(WriterClosed):
        writer.submit([["after"]])


def test_a_store_failure_reaches_the_callers_and_the_writer_goes_on(
    store: RecordingStore,
) -> None:
    writer = RowWriter(store)  # type: ignore[arg-type]
    store.fail = 1

    with pytest.raises(ConnectionError, match="store down"):
        writer.write([["lost"]], timeout=10)
    writer.write([["kept"]], timeout=10)

    assert store.rows("spans") == [["kept"]]
    writer.close()


def test_concurrent_writers_each_store_their_rows_once(store: RecordingStore) -> None:
    writer = RowWriter(store, max_rows=100)  # type: ignore[arg-type]

    def send(thread: int) -> None:
        for i in range(50):
            writer.write([[thread, i]], timeout=30)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    writer.close()

    stored = sorted(tuple(row) for row in store.rows("spans"))
    assert stored == sorted((t, i) for t in range(8) for i in range(50))


@pytest.mark.parametrize(
    ("options", "named"),
    [({"max_rows": 0}, "max_rows"), ({"flush_interval_seconds": 0}, "flush_interval_seconds")],
)
def test_misconfiguration_raises_value_error(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RowWriter(RecordingStore(), **options)  # type: ignore[arg-type]


def test_flush_returns_once_rows_nobody_waited_for_are_stored(store: RecordingStore) -> None:
    writer = RowWriter(store, flush_interval_seconds=60)  # type: ignore[arg-type]
    writer.submit([["s1"], ["s2"]], [["o1"]], urgent=False)

    assert writer.backlog_rows == 3
    writer.flush(timeout=10)

    assert store.rows("spans") == [["s1"], ["s2"]]
    assert store.rows("outcomes") == [["o1"]]
    assert writer.backlog_rows == 0
    writer.flush(timeout=10)  # nothing pending: returns at once
    writer.close()


def test_flush_ends_its_wait_when_the_insert_fails(store: RecordingStore) -> None:
    writer = RowWriter(store, flush_interval_seconds=60)  # type: ignore[arg-type]
    store.fail = 1
    future = writer.submit([["s1"]], urgent=False)

    writer.flush(timeout=10)

    assert isinstance(future.exception(timeout=0), ConnectionError)  # the submitter's to handle
    writer.close()


class BlockStore(RecordingStore):
    """Records Arrow blocks as their rows, converting rows as the real store does."""

    def block(self, table: str, rows: Sequence[Any], columns: Sequence[str]) -> Any:
        import pyarrow as pa

        return pa.table({name: [row[i] for row in rows] for i, name in enumerate(columns)})

    def insert_block(self, table: str, block: Any) -> None:
        rows = [list(row.values()) for row in block.to_pylist()]
        self.insert(table, rows, block.column_names)


def test_arrow_blocks_and_rows_of_one_flush_go_in_one_insert() -> None:
    import pyarrow as pa

    def row(span: str) -> list[str]:
        return [span if name == "span_id" else name for name in SPAN_COLUMNS]

    store = BlockStore()
    writer = RowWriter(store, flush_interval_seconds=60)  # type: ignore[arg-type]
    from_worker = store.block("spans", [row("a"), row("b")], SPAN_COLUMNS)
    assert isinstance(from_worker, pa.Table)

    writer.submit(from_worker, urgent=False)
    writer.submit([row("c")], urgent=False)
    assert writer.backlog_rows == 3
    writer.flush(timeout=10)

    assert [table for table, _, _ in store.inserts] == ["spans"]
    assert store.rows("spans") == [row("a"), row("b"), row("c")]
    writer.close()


def test_flush_returns_after_the_callbacks_of_the_stored_rows(store: RecordingStore) -> None:
    # The spool settles its records in such callbacks: a reader after flush must see that.
    writer = RowWriter(store, flush_interval_seconds=60)  # type: ignore[arg-type]
    settled: list[str] = []
    future = writer.submit([["s1"]], urgent=False)
    future.add_done_callback(lambda _: (time.sleep(0.2), settled.append("s1")))

    writer.flush(timeout=10)

    assert settled == ["s1"]
    writer.close()
