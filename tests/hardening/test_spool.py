"""Durability: the spool keeps what was acknowledged until the store has it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agentledger.collector.server import create_app
from agentledger.collector.settings import CollectorSettings
from agentledger.collector.spool import Spool, SpoolError, SpoolFull, read_records
from agentledger.collector.store import Store
from tests.hardening.conftest import FlakyStore

JSON = {"content-type": "application/json"}
# Cells of every kind a row holds: text, ints, None, bool, Decimal, float and a map.
SPAN_ROW = ["p", "ab" * 16, "cd" * 8, None, True, Decimal("0.000210000000"), 0.5, {"k": "v"}]
OUTCOME_ROW = ["p", "run-1", "correct", None, "api", 1_735_689_600_000_000_000, "api:1"]


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[list[Any], list[Any]]] = []

    def __call__(self, spans: list[Any], outcomes: list[Any]) -> None:
        if self.fail:
            raise ConnectionError("store down (simulated)")
        self.calls.append((spans, outcomes))


def test_a_stored_record_leaves_no_segment_behind(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    ticket = spool.append([SPAN_ROW], [])
    assert len(_segments(tmp_path)) == 1

    spool.done(ticket, stored=True)

    assert _segments(tmp_path) == []
    assert spool.pending == 0
    spool.close()


def test_a_record_the_store_refused_is_replayed_with_every_cell_intact(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.done(spool.append([SPAN_ROW], [OUTCOME_ROW]), stored=False)
    down, up = Recorder(fail=True), Recorder()

    assert spool.replay(down) == 0
    assert len(_segments(tmp_path)) == 1  # kept while the store is down
    assert spool.replay(up) == 1

    assert up.calls == [([SPAN_ROW], [OUTCOME_ROW])]
    assert type(up.calls[0][0][0][5]) is Decimal
    assert _segments(tmp_path) == []
    spool.close()


def test_segments_left_by_a_crash_are_replayed_by_the_next_process(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.append([SPAN_ROW], [])  # acknowledged, never confirmed: the process dies here
    first.close()

    second = Spool(tmp_path)
    recorder = Recorder()

    assert second.pending == 1
    assert second.replay(recorder) == 1
    assert recorder.calls == [([SPAN_ROW], [])]
    second.close()


@pytest.mark.parametrize(
    "tail",
    [
        b"\x10\x00",  # a header cut short
        b"\xff\x00\x00\x00\x00\x00\x00\x00{",  # a length longer than what was written
        b"\x02\x00\x00\x00\x00\x00\x00\x00{}",  # a checksum that does not match
    ],
)
def test_a_torn_record_at_the_end_is_dropped_and_the_rest_replayed(
    tmp_path: Path, tail: bytes
) -> None:
    spool = Spool(tmp_path)
    spool.append([SPAN_ROW], [])
    spool.close()
    (segment,) = _segments(tmp_path)
    with open(segment, "ab") as file:
        file.write(tail)

    assert list(read_records(segment)) == [([SPAN_ROW], [])]


def test_the_spool_refuses_records_past_its_bound(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=600)
    spool.done(spool.append([SPAN_ROW], []), stored=False)

    with pytest.raises(SpoolFull, match="600"):
        spool.append([SPAN_ROW] * 10, [])
    spool.close()


def test_one_process_at_a_time_holds_a_spool_directory(tmp_path: Path) -> None:
    spool = Spool(tmp_path)

    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path)
    spool.close()


# --- through the app, with a store that goes down ------------------------------------------------


def _batch(trace_id: str, project: str = "spool") -> bytes:
    spans = [
        {
            "traceId": trace_id,
            "spanId": f"{i:016x}",
            "name": "call",
            "startTimeUnixNano": "1735689600000000000",
            "endTimeUnixNano": "1735689601000000000",
        }
        for i in range(1, 4)
    ]
    resource = {"attributes": [{"key": "agentledger.project", "value": {"stringValue": project}}]}
    document = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": spans}]}]}
    return json.dumps(document).encode()


def _count(store: Store, trace_id: str) -> int:
    sql = "SELECT count() FROM spans FINAL WHERE trace_id = {t:String}"
    return int(store.query(sql, {"t": trace_id})[0][0])


@pytest.fixture
def flaky(store: Store) -> FlakyStore:
    return FlakyStore(store)


@pytest.fixture
def client(flaky: FlakyStore, tmp_path: Path) -> Iterator[TestClient]:
    settings = CollectorSettings(spool_dir=tmp_path / "spool", spool_max_bytes=20_000)
    app = create_app(settings, store=flaky)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_with_the_store_down_a_batch_is_acknowledged_from_the_spool_and_stored_later(
    client: TestClient, flaky: FlakyStore, store: Store, tmp_path: Path
) -> None:
    flaky.down = True

    answer = client.post("/v1/traces", content=_batch("f1" * 16), headers=JSON)
    client.app.state.writer.flush()  # type: ignore[attr-defined]  # the insert is tried

    assert answer.status_code == 200
    assert flaky.refused >= 1
    assert _count(store, "f1" * 16) == 0
    assert len(_segments(tmp_path / "spool")) == 1

    flaky.down = False
    spool: Spool = client.app.state.spool  # type: ignore[attr-defined]
    spool.replay(client.app.state.writer.write)  # type: ignore[attr-defined]

    assert _count(store, "f1" * 16) == 3
    assert _segments(tmp_path / "spool") == []


def test_past_the_spool_bound_ingest_answers_503_with_retry_after(
    client: TestClient, flaky: FlakyStore, store: Store
) -> None:
    flaky.down = True
    answers = [
        client.post("/v1/traces", content=_batch(f"{i:032x}", "bound"), headers=JSON)
        for i in range(1, 40)
    ]

    client.app.state.writer.flush()  # type: ignore[attr-defined]  # the insert is tried
    statuses = [a.status_code for a in answers]
    first_refusal = statuses.index(503)
    assert first_refusal > 0
    assert set(statuses[first_refusal:]) == {503}  # nothing is accepted once full
    assert int(answers[first_refusal].headers["retry-after"]) > 0
    assert "spool" in answers[first_refusal].json()["message"]

    # Once the store is back, every acknowledged batch is stored and the spool accepts again.
    flaky.down = False
    client.app.state.spool.replay(client.app.state.writer.write)  # type: ignore[attr-defined]
    for i in range(1, first_refusal + 1):
        assert _count(store, f"{i:032x}") == 3
    retry = client.post("/v1/traces", content=_batch(f"{40:032x}", "bound"), headers=JSON)
    assert retry.status_code == 200


def test_posted_outcomes_are_spooled_too(
    client: TestClient, flaky: FlakyStore, store: Store
) -> None:
    flaky.down = True
    verdict = {"run_id": "spooled-run", "outcome": "correct", "project": "spool"}

    answer = client.post("/api/v1/outcomes", json=[verdict])
    client.app.state.writer.flush()  # type: ignore[attr-defined]  # the insert is tried

    assert answer.status_code == 200
    flaky.down = False
    client.app.state.spool.replay(client.app.state.writer.write)  # type: ignore[attr-defined]
    count = store.query("SELECT count() FROM outcomes WHERE run_id = 'spooled-run'")[0][0]
    assert count == 1
