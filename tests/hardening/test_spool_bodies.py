"""The spool keeps an export's request body instead of its rows, and maps it again on replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agentledger.collector.server import create_app
from agentledger.collector.settings import CollectorSettings
from agentledger.collector.spool import Spool, SpooledBody, SpoolError, read_records
from agentledger.collector.store import Store
from agentledger.schemas import attributes as attr
from tests.hardening.conftest import FlakyStore

PROTOBUF = {"content-type": "application/x-protobuf"}


class Reader:
    """A body reader that records what it was given and answers fixed rows."""

    def __init__(self) -> None:
        self.calls: list[tuple[bytes, dict[str, str]]] = []

    def __call__(self, body: bytes, header: dict[str, str]) -> tuple[list[Any], list[Any]]:
        self.calls.append((body, header))
        return [[header["project"], body.decode()]], []


def test_a_body_record_is_replayed_through_the_reader_with_its_header(tmp_path: Path) -> None:
    reader = Reader()
    spool = Spool(tmp_path, body_reader=reader)
    spool.done(
        spool.append([], [], source=SpooledBody(b"body\nwith newline", {"project": "p"})),
        stored=False,
    )
    spool.done(spool.append([["row"]], [["outcome"]]), stored=False)
    calls: list[tuple[list[Any], list[Any]]] = []

    assert spool.replay(lambda spans, outcomes: calls.append((spans, outcomes))) == 2

    assert reader.calls == [(b"body\nwith newline", {"project": "p"})]
    # One insert for the segment: the body's rows, then the row record's.
    assert calls == [([["p", "body\nwith newline"], ["row"]], [["outcome"]])]
    assert list(tmp_path.glob("*.seg")) == []


def test_a_damaged_body_record_is_dropped_like_a_torn_one(tmp_path: Path) -> None:
    spool = Spool(tmp_path, body_reader=Reader())
    spool.append([], [], source=SpooledBody(b"first", {"project": "a"}))
    spool.append([], [], source=SpooledBody(b"second", {"project": "b"}))
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0xFF  # the last byte of the second body
    segment.write_bytes(bytes(data))

    assert [spans for spans, _ in read_records(segment, Reader())] == [[["a", "first"]]]


def test_without_a_reader_a_body_segment_is_kept_not_lost(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.append([], [], source=SpooledBody(b"x", {"project": "p"}))
    first.close()
    (segment,) = tmp_path.glob("*.seg")

    with pytest.raises(SpoolError, match="no reader"):
        list(read_records(segment))
    second = Spool(tmp_path)
    assert second.replay(lambda spans, outcomes: None) == 0
    assert list(tmp_path.glob("*.seg")) == [segment]


# --- through the app ------------------------------------------------------------------------


def _export(trace_byte: int) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    span = scope.spans.add(
        trace_id=bytes([trace_byte]) * 16,
        span_id=b"\x00" * 7 + b"\x01",
        name="chat",
        start_time_unix_nano=1_760_000_000_000_000_000,
        end_time_unix_nano=1_760_000_001_000_000_000,
    )
    for key, value in (
        (attr.SPAN_KIND, AnyValue(string_value=attr.KIND_LLM)),
        (attr.REQUEST_MODEL, AnyValue(string_value="gpt-4o-mini")),
        (attr.PROVIDER_NAME, AnyValue(string_value="openai")),
        (attr.INPUT_TOKENS, AnyValue(int_value=1_000_000)),
        (attr.OUTPUT_TOKENS, AnyValue(int_value=1_000_000)),
    ):
        span.attributes.append(KeyValue(key=key, value=value))
    return request.SerializeToString()


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[tuple[TestClient, FlakyStore]]:
    flaky = FlakyStore(store)
    app = create_app(CollectorSettings(spool_dir=tmp_path / "spool"), store=flaky)  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client, flaky


def test_a_spooled_protobuf_export_is_stored_as_ingest_would_have(
    client: tuple[TestClient, FlakyStore], store: Store
) -> None:
    test_client, flaky = client
    flaky.down = True

    assert (
        test_client.post("/v1/traces", content=_export(0xB1), headers=PROTOBUF).status_code == 200
    )
    test_client.app.state.writer.flush()  # type: ignore[attr-defined]  # the insert is tried

    flaky.down = False
    app = test_client.app
    assert app.state.spool.replay(app.state.writer.write) == 1  # type: ignore[attr-defined]
    sql = "SELECT project, kind, cost_usd, cost_source FROM spans FINAL WHERE trace_id = {t:String}"
    rows = store.query(sql, {"t": "b1" * 16})
    # gpt-4o-mini: $0.15 per million input tokens and $0.60 per million output tokens.
    assert [(p, k, str(c), s) for p, k, c, s in rows] == [
        ("default", "llm", "0.750000000000", "genai-prices")
    ]
