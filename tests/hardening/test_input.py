"""Input hardening: every case of the issue, through the HTTP app, with what gets stored."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from agentledger.collector.rollups import rollups_of
from agentledger.collector import otlp
from agentledger.collector.server import create_app
from agentledger.collector.settings import CollectorSettings
from agentledger.collector.store import Store
from tests.collector.otlp_payloads import ResourceSpec, SpanSpec, json_request, proto_request

JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/x-protobuf"}
GZIP = {"content-encoding": "gzip"}
LIMIT = 1024 * 1024  # the body limit of the app under test: 1 MiB
LLM = {
    "agentledger.span.kind": "llm",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 2_000,
    "gen_ai.usage.output_tokens": 50,
    "agentledger.workflow": "triage",
}


@pytest.fixture(scope="module")
def client(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = CollectorSettings(
        max_body_bytes=LIMIT, spool_dir=tmp_path_factory.mktemp("input-spool")
    )
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as c:
        yield c


def _rows(store: Store, where: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rollups_of(store).wait_for_writes()  # as readers do: what was acknowledged is stored
    return store.query_dicts(
        f"SELECT * EXCEPT ingested_at FROM spans FINAL WHERE {where} ORDER BY project, span_id",
        params,
    )


def _span_json(trace_id: str, span_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": "call",
        "startTimeUnixNano": "1735689600000000000",
        "endTimeUnixNano": "1735689601000000000",
        **extra,
    }


def _document(*spans: dict[str, Any], project: str = "input") -> bytes:
    resource = {"attributes": [{"key": "agentledger.project", "value": {"stringValue": project}}]}
    scope_spans = [{"scope": {"name": "t"}, "spans": list(spans)}]
    return json.dumps(
        {"resourceSpans": [{"resource": resource, "scopeSpans": scope_spans}]}
    ).encode()


# --- ids -----------------------------------------------------------------------------------


def test_upper_case_hex_ids_are_accepted_and_stored_lower_case(
    client: TestClient, store: Store
) -> None:
    body = _document(_span_json("5B8EFFF798038103D269B633813FC60C", "EEE19B7EC3C1B174"))

    answer = client.post("/v1/traces", content=body, headers=JSON)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {}
    rows = _rows(store, "project = 'input' AND span_id = 'eee19b7ec3c1b174'", {})
    assert [(r["trace_id"], r["span_id"]) for r in rows] == [
        (b"5b8efff798038103d269b633813fc60c", b"eee19b7ec3c1b174")
    ]


@pytest.mark.parametrize(
    ("trace_id", "span_id", "named"),
    [
        # the same trace id as above, in base64 as protobuf's JSON mapping would write it
        ("W47/95gDgQPSabYzgT/GDA==", "eee19b7ec3c1b175", "traceId"),
        ("5b8efff798038103d269b633813fc60c", "eee19b", "spanId"),
        ("0" * 32, "eee19b7ec3c1b176", "traceId"),
        ("5b8efff798038103d269b633813fc60c", "0" * 16, "spanId"),
    ],
)
def test_a_request_with_only_an_invalid_id_is_400_naming_the_field(
    client: TestClient, store: Store, trace_id: str, span_id: str, named: str
) -> None:
    answer = client.post(
        "/v1/traces", content=_document(_span_json(trace_id, span_id)), headers=JSON
    )

    assert answer.status_code == 400
    assert answer.json()["code"] == 3  # google.rpc INVALID_ARGUMENT
    assert named in answer.json()["message"]
    assert repr(trace_id if named == "traceId" else span_id) in answer.json()["message"]
    assert _rows(store, "span_id = {s:String}", {"s": span_id}) == []


def test_an_invalid_span_beside_valid_ones_is_rejected_alone_with_partial_success(
    client: TestClient, store: Store
) -> None:
    good = _span_json("5b8efff798038103d269b633813fc60d", "aaaaaaaaaaaaaa01")
    bad = _span_json("W47/95gDgQPSabYzgT/GDA==", "aaaaaaaaaaaaaa02")

    answer = client.post("/v1/traces", content=_document(good, bad), headers=JSON)

    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"  # int64 is a string in proto3 JSON
    assert "traceId" in partial["errorMessage"]
    stored = _rows(store, "trace_id = '5b8efff798038103d269b633813fc60d'", {})
    assert [r["span_id"] for r in stored] == [b"aaaaaaaaaaaaaa01"]


def test_an_empty_parent_span_id_makes_a_root_span(client: TestClient, store: Store) -> None:
    span = _span_json("5b8efff798038103d269b633813fc60e", "bbbbbbbbbbbbbb01", parentSpanId="")

    answer = client.post("/v1/traces", content=_document(span), headers=JSON)

    assert answer.status_code == 200
    (row,) = _rows(store, "trace_id = '5b8efff798038103d269b633813fc60e'", {})
    assert row["parent_span_id"] == ""


# --- encodings ------------------------------------------------------------------------------


def _request(project: str) -> list[ResourceSpec]:
    spans = [
        SpanSpec("c1c1c1c1c1c1c1c1", trace_id="c1" * 16, attributes=LLM),
        SpanSpec(
            "c2c2c2c2c2c2c2c2",
            trace_id="c1" * 16,
            parent="c1c1c1c1c1c1c1c1",
            attributes={
                "agentledger.span.kind": "tool",
                "gen_ai.tool.name": "search",
                "tags": ["a", "b"],
            },
        ),
    ]
    return [ResourceSpec(spans, attributes={"service.name": "a", "agentledger.project": project})]


def test_gzipped_json_and_protobuf_store_rows_identical_to_plain(
    client: TestClient, store: Store
) -> None:
    # The same spans under four projects; the rows must differ in the project column only.
    variants = {
        "enc-plain-json": (json_request(_request("enc-plain-json")), JSON, {}),
        "enc-gzip-json": (gzip.compress(json_request(_request("enc-gzip-json"))), JSON, GZIP),
        "enc-plain-proto": (proto_request(_request("enc-plain-proto")), PROTOBUF, {}),
        "enc-gzip-proto": (
            gzip.compress(proto_request(_request("enc-gzip-proto"))),
            PROTOBUF,
            GZIP,
        ),
    }
    for body, content_type, encoding in variants.values():
        answer = client.post("/v1/traces", content=body, headers={**content_type, **encoding})
        assert answer.status_code == 200, answer.text

    by_project = {}
    for project in variants:
        rows = _rows(store, "project = {p:String}", {"p": project})
        assert len(rows) == 2
        for row in rows:
            del row["project"]
            row["resource_attributes"].pop("agentledger.project")
        by_project[project] = rows
    plain = by_project["enc-plain-json"]
    assert all(rows == plain for rows in by_project.values())


def test_a_gzip_header_followed_by_garbage_is_400(client: TestClient) -> None:
    body = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"this is not deflate data" * 4

    answer = client.post("/v1/traces", content=body, headers={**JSON, **GZIP})

    assert answer.status_code == 400
    assert "gzip" in answer.json()["message"]


def test_a_truncated_gzip_body_is_400(client: TestClient) -> None:
    body = gzip.compress(json_request(_request("truncated")))[:-12]

    answer = client.post("/v1/traces", content=body, headers={**JSON, **GZIP})

    assert answer.status_code == 400


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd"])
def test_an_unsupported_content_encoding_is_415(client: TestClient, encoding: str) -> None:
    answer = client.post(
        "/v1/traces", content=b"{}", headers={**JSON, "content-encoding": encoding}
    )

    assert answer.status_code == 415
    assert repr(encoding) in answer.json()["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", ""])
def test_an_unknown_content_type_is_415(client: TestClient, content_type: str) -> None:
    answer = client.post("/v1/traces", content=b"{}", headers={"content-type": content_type})

    assert answer.status_code == 415


def _gzip_bomb(inflated_bytes: int) -> bytes:
    """Zeros, gzipped in chunks so that the test never holds the inflated body."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(inflated_bytes // len(chunk))]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_100_kb_of_gzip_inflating_past_the_limit_is_413(client: TestClient) -> None:
    bomb = _gzip_bomb(100 * 1024 * 1024)
    assert 50_000 < len(bomb) < 200_000  # about 100 KB on the wire

    answer = client.post("/v1/traces", content=bomb, headers={**PROTOBUF, **GZIP})

    assert answer.status_code == 413
    status = status_pb2.Status.FromString(answer.content)
    assert str(LIMIT) in status.message


def test_decompression_stops_at_the_limit_instead_of_inflating_everything() -> None:
    bomb = _gzip_bomb(100 * 1024 * 1024)

    tracemalloc.start()
    try:
        with pytest.raises(otlp.BodyTooLarge, match=str(LIMIT)):
            otlp.decompress(bomb, "gzip", LIMIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # Inflating the whole body would take 100 MiB; stopping at the limit takes about 1 MiB.
    assert peak < 8 * LIMIT


def test_a_body_over_the_limit_is_413_by_content_length_or_while_streaming(
    client: TestClient,
) -> None:
    big = b" " * (LIMIT + 1)

    declared = client.post("/v1/traces", content=big, headers=JSON)

    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b" " * (LIMIT // 2)

    streamed = client.post("/v1/traces", content=chunks(), headers=JSON)  # chunked, no length

    assert declared.status_code == 413
    assert streamed.status_code == 413


def test_the_body_limit_is_a_setting_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENTLEDGER_MAX_BODY_BYTES", "12345")

    assert CollectorSettings().max_body_bytes == 12345


# --- undecodable bodies -----------------------------------------------------------------------


def test_protobuf_strings_that_are_not_utf8_are_400(client: TestClient, store: Store) -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = bytes.fromhex("d1" * 16)
    span.span_id = bytes.fromhex("d1" * 8)
    span.name = "NAME"
    # Field `name` is a proto3 string: replace its UTF-8 bytes with bytes that are not UTF-8.
    body = request.SerializeToString().replace(b"NAME", b"N\xffM\xfe")

    answer = client.post("/v1/traces", content=body, headers=PROTOBUF)

    assert answer.status_code == 400
    assert "UTF-8" in status_pb2.Status.FromString(answer.content).message
    assert _rows(store, "trace_id = {t:String}", {"t": "d1" * 16}) == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", JSON),
        (b"[1, 2, 3]", JSON),
        (b'{"resourceSpans": 7}', JSON),
        (b"\xff\xfe\x00", JSON),
        (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF),
        (b"[" * 100_000, JSON),  # deeper than the JSON parser's recursion limit
    ],
)
def test_undecodable_bodies_are_400(
    client: TestClient, body: bytes, content_type: dict[str, str]
) -> None:
    answer = client.post("/v1/traces", content=body, headers=content_type)

    assert answer.status_code == 400


def test_a_lone_surrogate_in_a_json_string_is_replaced(client: TestClient, store: Store) -> None:
    # Written by hand: json.dumps would not produce a lone surrogate escape for us.
    span = (
        '{"traceId": "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1", "spanId": "e1e1e1e1e1e1e1e1", '
        '"name": "half \\ud83d of an emoji", "startTimeUnixNano": "1735689600000000000", '
        '"endTimeUnixNano": "1735689601000000000", "attributes": [{"key": "note", '
        '"value": {"stringValue": "\\udc00 alone"}}]}'
    )
    body = '{"resourceSpans": [{"scopeSpans": [{"spans": [' + span + "]}]}]}"

    answer = client.post("/v1/traces", content=body.encode(), headers=JSON)

    assert answer.status_code == 200, answer.text
    (row,) = _rows(store, "trace_id = {t:String}", {"t": "e1" * 16})
    assert row["name"] == "half \ufffd of an emoji"
    assert row["attributes"]["note"] == "\ufffd alone"


def test_the_protobuf_answer_of_a_partial_success_is_protobuf(client: TestClient) -> None:
    request = ExportTraceServiceRequest.FromString(proto_request(_request("pb-partial")))
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.trace_id = b"\x01" * 15  # 15 bytes: one short
    bad.span_id = b"\x02" * 8

    answer = client.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)

    assert answer.status_code == 200
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert "traceId" in response.partial_success.error_message


def test_the_spool_of_the_module_is_empty_after_every_request_was_stored(
    client: TestClient,
) -> None:
    spool_dir: Path = client.app.state.spool.directory  # type: ignore[attr-defined]
    client.app.state.writer.flush()  # type: ignore[attr-defined]

    assert list(spool_dir.glob("*.seg")) == []
