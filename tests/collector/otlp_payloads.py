"""Build the same OTLP export request as protobuf and as OTLP/JSON, independently of the decoder.

A span is a :class:`SpanSpec`; attribute values are plain Python values (str, bool, int,
float, bytes, list, dict). JSON is written by hand as the OTLP specification shows it (hex
ids, int64 as decimal strings); protobuf is built with the generated classes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

TRACE_ID = "5b8efff798038103d269b633813fc60c"
T_START = 1_735_689_600_000_000_000  # 2025-01-01T00:00:00Z


@dataclass
class SpanSpec:
    span_id: str
    trace_id: str = TRACE_ID
    parent: str = ""
    name: str = "span"
    start_ns: int = T_START
    end_ns: int = T_START + 2_000_000_000
    kind: int = 1
    status: int = 0
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResourceSpec:
    spans: list[SpanSpec]
    attributes: dict[str, Any] = field(default_factory=lambda: {"service.name": "agent"})
    scope: str = "test.scope"


def json_value(value: Any, *, ints_as_numbers: bool = False) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": value if ints_as_numbers else str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return {"arrayValue": {"values": [json_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": json_attributes(value)}}
    raise TypeError(value)


def json_attributes(values: dict[str, Any], *, ints_as_numbers: bool = False) -> list[Any]:
    return [
        {"key": k, "value": json_value(v, ints_as_numbers=ints_as_numbers)}
        for k, v in values.items()
    ]


def json_span(span: SpanSpec, *, ints_as_numbers: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": span.trace_id,
        "spanId": span.span_id,
        "name": span.name,
        "kind": span.kind,
        "startTimeUnixNano": span.start_ns if ints_as_numbers else str(span.start_ns),
        "endTimeUnixNano": span.end_ns if ints_as_numbers else str(span.end_ns),
        "attributes": json_attributes(span.attributes, ints_as_numbers=ints_as_numbers),
        "status": {"code": span.status} if span.status else {},
    }
    if span.parent:
        out["parentSpanId"] = span.parent
    return out


def json_request(resources: list[ResourceSpec], *, ints_as_numbers: bool = False) -> bytes:
    document = {
        "resourceSpans": [
            {
                "resource": {"attributes": json_attributes(r.attributes)},
                "scopeSpans": [
                    {
                        "scope": {"name": r.scope},
                        "spans": [json_span(s, ints_as_numbers=ints_as_numbers) for s in r.spans],
                    }
                ],
            }
            for r in resources
        ]
    }
    return json.dumps(document).encode()


def _set_any(target: AnyValue, value: Any) -> None:
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            _set_any(target.array_value.values.add(), item)
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        _set_attributes(target.kvlist_value.values, value)
    else:
        raise TypeError(value)


def _set_attributes(target: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        kv: KeyValue = target.add()
        kv.key = key
        _set_any(kv.value, value)


def proto_request(resources: list[ResourceSpec]) -> bytes:
    request = ExportTraceServiceRequest()
    for r in resources:
        resource_spans = request.resource_spans.add()
        _set_attributes(resource_spans.resource.attributes, r.attributes)
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = r.scope
        for s in r.spans:
            span = scope_spans.spans.add()
            span.trace_id = bytes.fromhex(s.trace_id)
            span.span_id = bytes.fromhex(s.span_id)
            span.parent_span_id = bytes.fromhex(s.parent)
            span.name = s.name
            span.kind = s.kind  # type: ignore[assignment]
            span.start_time_unix_nano = s.start_ns
            span.end_time_unix_nano = s.end_ns
            span.status.code = s.status  # type: ignore[assignment]
            _set_attributes(span.attributes, s.attributes)
    return request.SerializeToString()
