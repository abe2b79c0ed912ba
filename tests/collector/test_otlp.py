"""Decoding of OTLP/HTTP bodies: ids, int64 spellings, attribute values, gzip, errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from agentledger.collector import otlp
from tests.collector.otlp_payloads import (
    T_START,
    TRACE_ID,
    ResourceSpec,
    SpanSpec,
    json_request,
    proto_request,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "otlp-proto-example"


def _json_body(*spans: dict[str, object]) -> bytes:
    document = {"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}
    return json.dumps(document).encode()


def _span(**fields: object) -> dict[str, object]:
    span: dict[str, object] = {"traceId": TRACE_ID, "spanId": "eee19b7ec3c1b174", "name": "s"}
    span.update(fields)
    return span


def test_upper_case_hex_ids_are_stored_lower_case() -> None:
    body = _json_body(
        _span(
            traceId="5B8EFFF798038103D269B633813FC60C",
            spanId="EEE19B7EC3C1B174",
            parentSpanId="EEE19B7EC3C1B173",
        )
    )

    decoded = otlp.decode_json(body)

    (span,) = decoded.resources[0].spans
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert decoded.rejected == []


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        # the trace id above in base64, as json_format would (wrongly) accept it
        ({"traceId": "W47/95gDgQPSabYzgT/GDA=="}, "traceId"),
        ({"traceId": "0" * 32}, "traceId"),
        ({"traceId": "5b8efff798038103d269b633813fc60"}, "traceId"),
        ({"traceId": None}, "traceId"),
        ({"spanId": "eee19b"}, "spanId"),
        ({"spanId": "0000000000000000"}, "spanId"),
        ({"spanId": "eee19b7ec3c1b17g"}, "spanId"),
        ({"parentSpanId": "eee19b"}, "parentSpanId"),
        ({"startTimeUnixNano": "soon"}, "startTimeUnixNano"),
        ({"endTimeUnixNano": str(2**63)}, "endTimeUnixNano"),
        ({"kind": "SPAN_KIND_SIDEWAYS"}, "kind"),
        ({"attributes": [{"key": "n", "value": {"intValue": "1.5"}}]}, "'n'"),
        ({"attributes": [{"key": "b", "value": {"boolValue": "yes"}}]}, "'b'"),
    ],
)
def test_an_invalid_span_is_rejected_alone_naming_the_field(
    fields: dict[str, object], named: str
) -> None:
    good = _span(spanId="1111111111111111")
    body = _json_body(good, _span(**fields))

    decoded = otlp.decode_json(body)

    assert [s.span_id for s in decoded.resources[0].spans] == ["1111111111111111"]
    assert len(decoded.rejected) == 1
    assert named in decoded.rejected[0]
    assert "spans[1]" in decoded.rejected[0]


def test_a_base64_id_gets_a_hint_that_otlp_json_wants_hex() -> None:
    decoded = otlp.decode_json(_json_body(_span(traceId="W47/95gDgQPSabYzgT/GDA==")))

    assert "hex, not base64" in decoded.rejected[0]


@pytest.mark.parametrize("parent", ["", None, "0000000000000000"])
def test_an_empty_or_zero_parent_is_a_root_span(parent: str | None) -> None:
    decoded = otlp.decode_json(_json_body(_span(parentSpanId=parent)))

    assert decoded.resources[0].spans[0].parent_span_id == ""


@pytest.mark.parametrize("spelling", [str, int])
def test_int64_fields_may_be_strings_or_numbers(spelling: type) -> None:
    body = _json_body(
        _span(
            startTimeUnixNano=spelling(1544712660000000000),
            endTimeUnixNano=spelling(1544712661000000001),
            attributes=[{"key": "n", "value": {"intValue": spelling(9007199254740993)}}],
        )
    )

    span = otlp.decode_json(body).resources[0].spans[0]

    assert span.start_ns == 1544712660000000000
    assert span.end_ns == 1544712661000000001
    assert span.attributes == {"n": 9007199254740993}


def test_enums_may_be_numbers_or_names() -> None:
    by_number = _span(kind=3, status={"code": 2})
    by_name = _span(
        spanId="2222222222222222", kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR"}
    )

    spans = otlp.decode_json(_json_body(by_number, by_name)).resources[0].spans

    assert [(s.kind, s.status_code) for s in spans] == [(3, "ERROR"), (3, "ERROR")]


def test_every_attribute_value_type_decodes() -> None:
    attributes = [
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "i", "value": {"intValue": "-7"}},
        {"key": "d", "value": {"doubleValue": 0.25}},
        {"key": "d_str", "value": {"doubleValue": "1.5"}},
        {"key": "t", "value": {"boolValue": True}},
        {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"intValue": 2}]}}},
        {
            "key": "kv",
            "value": {"kvlistValue": {"values": [{"key": "inner", "value": {"boolValue": False}}]}},
        },
        {"key": "bytes", "value": {"bytesValue": "AAEC"}},  # base64 of 00 01 02
        {"key": "empty", "value": {}},
    ]

    span = otlp.decode_json(_json_body(_span(attributes=attributes))).resources[0].spans[0]

    assert span.attributes == {
        "s": "text",
        "i": -7,
        "d": 0.25,
        "d_str": 1.5,
        "t": True,
        "a": ["x", 2],
        "kv": {"inner": False},
        "bytes": b"\x00\x01\x02",
        "empty": None,
    }


def _sample() -> list[ResourceSpec]:
    attributes = {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 1200,
        "ratio": 0.5,
        "flag": True,
        "tags": ["a", "b"],
        "nested": {"k": 1},
        "raw": b"\xff\x00",
    }
    return [
        ResourceSpec(
            attributes={"service.name": "agent", "agentledger.project": "p1"},
            spans=[
                SpanSpec("00000000000000a1", name="root", status=1),
                SpanSpec(
                    "00000000000000a2",
                    parent="00000000000000a1",
                    attributes=attributes,
                    kind=3,
                    status=2,
                ),
            ],
        ),
        ResourceSpec(spans=[SpanSpec("00000000000000b1", trace_id="ab" * 16)]),
    ]


@pytest.mark.parametrize("ints_as_numbers", [False, True])
def test_protobuf_and_json_of_the_same_spans_decode_identically(ints_as_numbers: bool) -> None:
    from_proto = otlp.decode_protobuf(proto_request(_sample()))
    from_json = otlp.decode_json(json_request(_sample(), ints_as_numbers=ints_as_numbers))

    assert from_proto == from_json
    assert from_proto.span_count == 3
    second = from_proto.resources[0].spans[1]
    assert second.trace_id == TRACE_ID
    assert second.parent_span_id == "00000000000000a1"
    assert (second.kind, second.status_code, second.start_ns) == (3, "ERROR", T_START)
    assert second.scope_name == "test.scope"


def test_the_canonical_otlp_json_example_decodes() -> None:
    body = (EXAMPLE / "trace.json").read_bytes()

    decoded = otlp.decode(body, otlp.media_type("application/json"))

    assert decoded.rejected == []
    (resource,) = decoded.resources
    assert resource.attributes == {"service.name": "my.service"}
    (span,) = resource.spans
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.name == "I'm a server span"
    assert (span.start_ns, span.end_ns) == (1544712660000000000, 1544712661000000000)
    assert span.kind == 2
    assert span.attributes == {"my.span.attr": "some value"}
    assert span.scope_name == "my.library"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/json", otlp.JSON),
        ("Application/JSON; charset=utf-8", otlp.JSON),
        ("application/x-protobuf", otlp.PROTOBUF),
        ("application/protobuf", otlp.PROTOBUF),
    ],
)
def test_media_types(header: str, expected: str) -> None:
    assert otlp.media_type(header) == expected


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/grpc"])
def test_unknown_media_type_is_415(header: str | None) -> None:
    with pytest.raises(otlp.UnsupportedMediaType, match="Content-Type"):
        otlp.media_type(header)


def test_gzip_body_decompresses_to_the_same_bytes() -> None:
    body = json_request(_sample())

    assert otlp.decompress(gzip.compress(body), "gzip") == body
    assert otlp.decompress(body, None) == body
    assert otlp.decompress(body, "identity") == body


def test_gzip_header_followed_by_garbage_is_400() -> None:
    garbage = gzip.compress(b"{}")[:10] + b"not deflate data at all"

    with pytest.raises(otlp.MalformedRequest, match="gzip"):
        otlp.decompress(garbage, "gzip")


def test_truncated_gzip_is_400() -> None:
    with pytest.raises(otlp.MalformedRequest, match="truncated"):
        otlp.decompress(gzip.compress(b"x" * 1000)[:-12], "gzip")


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd"])
def test_unsupported_content_encoding_is_415(encoding: str) -> None:
    with pytest.raises(otlp.UnsupportedMediaType, match=repr(encoding)):
        otlp.decompress(b"", encoding)


def test_gzip_that_inflates_past_the_limit_is_413() -> None:
    bomb = gzip.compress(b"\0" * 1_000_000)

    with pytest.raises(otlp.BodyTooLarge):
        otlp.decompress(bomb, "gzip", max_bytes=100_000)
    assert otlp.decompress(bomb, "gzip", max_bytes=1_000_000) == b"\0" * 1_000_000


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b'"x"', b'{"resourceSpans": {}}', b"\xff\xfe", b'{"resourceSpans": [1]}']
)
def test_unreadable_json_is_malformed(body: bytes) -> None:
    with pytest.raises(otlp.MalformedRequest):
        otlp.decode_json(body)


def test_unreadable_protobuf_is_malformed() -> None:
    with pytest.raises(otlp.MalformedRequest, match="protobuf"):
        otlp.decode_protobuf(b"\x0a\xff\xff\xff")


def test_protobuf_string_that_is_not_utf8_is_malformed() -> None:
    body = proto_request([ResourceSpec([SpanSpec("00000000000000a1", name="zz-name-zz")])])

    with pytest.raises(otlp.MalformedRequest):
        otlp.decode_protobuf(body.replace(b"zz-name-zz", b"zz-\xff\xfe\xfd\xfczz"))


def test_protobuf_ids_of_the_wrong_length_are_rejected() -> None:
    body = proto_request([ResourceSpec([SpanSpec("00000000000000a1"), SpanSpec("a1b2c3")])])

    decoded = otlp.decode_protobuf(body)

    assert decoded.span_count == 1
    assert "spanId 'a1b2c3'" in decoded.rejected[0]


def test_a_lone_surrogate_is_replaced_without_breaking_the_batch() -> None:
    body = _json_body(_span(name="bad \\ud800 name")).replace(b"\\\\ud800", b"\\ud800")

    span = otlp.decode_json(body).resources[0].spans[0]

    assert span.name == "bad \ufffd name"
    span.name.encode("utf-8")
