"""Property-based tests of the OTLP decoders, the gzip reader and the spool's row encoding."""

from __future__ import annotations

import gzip
import json
import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentledger.collector import otlp
from agentledger.collector.mapping import SpanMapper
from agentledger.collector.spool import Spool, read_records
from tests.collector.otlp_payloads import ResourceSpec, SpanSpec, json_request, proto_request

FAST = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
MAPPER = SpanMapper()

# --- strategies -------------------------------------------------------------------------------

hex_ids = st.binary(min_size=16, max_size=16).filter(any).map(bytes.hex)
span_ids = st.binary(min_size=8, max_size=8).filter(any).map(bytes.hex)
int64 = st.integers(-(2**63), 2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(st.text(), st.booleans(), int64, finite, st.binary(max_size=32))
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
)
attributes = st.dictionaries(st.text(max_size=20), values, max_size=6)
times = st.integers(0, 2**63 - 1)


@st.composite
def span_specs(draw: st.DrawFn) -> SpanSpec:
    return SpanSpec(
        span_id=draw(span_ids),
        trace_id=draw(hex_ids),
        parent=draw(st.one_of(st.just(""), span_ids)),
        name=draw(st.text()),
        start_ns=draw(times),
        end_ns=draw(times),
        kind=draw(st.integers(0, 5)),
        status=draw(st.integers(0, 2)),
        attributes=draw(attributes),
    )


requests = st.lists(
    st.builds(
        ResourceSpec,
        spans=st.lists(span_specs(), min_size=1, max_size=4),
        attributes=attributes,
        scope=st.text(max_size=10),
    ),
    min_size=1,
    max_size=3,
)


def _expected(resources: list[ResourceSpec]) -> list[tuple[dict[str, Any], list[otlp.SpanData]]]:
    """What a decoder must produce, written from the OTLP specification, not from the code."""
    statuses = {0: "UNSET", 1: "OK", 2: "ERROR"}
    return [
        (
            r.attributes,
            [
                otlp.SpanData(
                    trace_id=s.trace_id,
                    span_id=s.span_id,
                    parent_span_id=s.parent,
                    name=s.name,
                    kind=s.kind,
                    start_ns=s.start_ns,
                    end_ns=s.end_ns,
                    status_code=statuses[s.status],
                    attributes=s.attributes,
                    scope_name=r.scope,
                )
                for s in r.spans
            ],
        )
        for r in resources
    ]


def _decoded(request: otlp.DecodedRequest) -> list[tuple[dict[str, Any], list[otlp.SpanData]]]:
    assert request.rejected == []
    return [(r.attributes, r.spans) for r in request.resources]


# --- valid requests decode to what they say ----------------------------------------------------


@FAST
@given(requests)
def test_protobuf_and_json_decode_every_valid_request_to_the_same_spans(
    resources: list[ResourceSpec],
) -> None:
    expected = _expected(resources)

    assert _decoded(otlp.decode_protobuf(proto_request(resources))) == expected
    assert _decoded(otlp.decode_json(json_request(resources))) == expected


@FAST
@given(requests)
def test_upper_case_ids_decode_like_lower_case_ones(resources: list[ResourceSpec]) -> None:
    document = json.loads(json_request(resources))
    for resource_spans in document["resourceSpans"]:
        for span in resource_spans["scopeSpans"][0]["spans"]:
            span["traceId"] = span["traceId"].upper()
            span["spanId"] = span["spanId"].upper()

    decoded = otlp.decode_json(json.dumps(document).encode())

    assert _decoded(decoded) == _expected(resources)


@FAST
@given(st.binary(max_size=4096), st.integers(1, 8192))
def test_gzip_round_trips_within_the_limit_and_is_413_past_it(body: bytes, limit: int) -> None:
    packed = gzip.compress(body)

    if len(body) <= limit and len(packed) <= limit:
        assert otlp.decompress(packed, "gzip", limit) == body
    else:
        with pytest.raises(otlp.BodyTooLarge):
            otlp.decompress(packed, "gzip", limit)


# --- anything else is refused with a 4xx, never an unexpected exception -------------------------

_OTLP_KEYS = [
    "resourceSpans", "resource", "attributes", "scopeSpans", "scope", "name", "spans",
    "traceId", "spanId", "parentSpanId", "kind", "startTimeUnixNano", "endTimeUnixNano",
    "status", "code", "key", "value", "stringValue", "intValue", "doubleValue", "boolValue",
    "arrayValue", "kvlistValue", "bytesValue", "values",
]  # fmt: skip
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(alphabet=string.hexdigits, min_size=16, max_size=32),
    st.sampled_from(["STATUS_CODE_ERROR", "SPAN_KIND_CLIENT", "AAAA", "-1", "1e3", "NaN"]),
)
json_documents = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(_OTLP_KEYS), st.text(max_size=5)), children, max_size=5
        ),
    ),
    max_leaves=40,
)


def _decode_and_map(body: bytes, media: str) -> None:
    try:
        MAPPER.map(otlp.decode(body, media))
    except otlp.OtlpError as exc:
        assert 400 <= exc.status_code < 500


@settings(
    max_examples=800, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(json_documents)
def test_any_json_document_is_decoded_or_refused(document: Any) -> None:
    _decode_and_map(json.dumps(document).encode(), otlp.JSON)
    _decode_and_map(
        json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [document]}]}]}).encode(), otlp.JSON
    )


@FAST
@given(st.binary(max_size=2048))
def test_any_bytes_are_decoded_or_refused_in_both_encodings(body: bytes) -> None:
    _decode_and_map(body, otlp.PROTOBUF)
    _decode_and_map(body, otlp.JSON)
    try:
        otlp.decompress(body, "gzip", 4096)
    except otlp.OtlpError as exc:
        assert exc.status_code in (400, 413)


@FAST
@given(requests, st.data())
def test_a_damaged_valid_request_is_decoded_or_refused(
    resources: list[ResourceSpec], data: st.DataObject
) -> None:
    for media, body in [
        (otlp.PROTOBUF, proto_request(resources)),
        (otlp.JSON, json_request(resources)),
    ]:
        damaged = bytearray(body)
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(damaged) - 1))
            damaged[index] = data.draw(st.integers(0, 255))
        _decode_and_map(bytes(damaged), media)


# --- the spool gives back the rows it was given ------------------------------------------

cells = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(),
    st.decimals(allow_nan=False, allow_infinity=False, places=12),
    st.dictionaries(st.text(), st.text(), max_size=3),
)
rows = st.lists(st.lists(cells, min_size=1, max_size=8), max_size=5)


@FAST
@given(rows, rows)
def test_spooled_rows_come_back_identical(
    tmp_path_factory: pytest.TempPathFactory, spans: list[list[Any]], outcomes: list[list[Any]]
) -> None:
    directory: Path = tmp_path_factory.mktemp("spool")
    spool = Spool(directory)
    spool.append(spans, outcomes)
    spool.close()

    ((got_spans, got_outcomes),) = [r for p in directory.glob("*.seg") for r in read_records(p)]

    assert (got_spans, got_outcomes) == (spans, outcomes)
    assert [type(c) for r in got_spans for c in r] == [type(c) for r in spans for c in r]
    assert all(type(a) is Decimal for r in got_spans for a in r if isinstance(a, Decimal))
