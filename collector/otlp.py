"""Decoding of OTLP/HTTP trace requests: protobuf or JSON, plain or gzip.

Both encodings decode into the same plain structure (:class:`DecodedRequest`), so that the
mapping to rows does not depend on the wire format. A request that cannot be read at all
raises an :class:`OtlpError` subclass, which the server turns into 4xx; a span that can be
read but is invalid (an id of the wrong length, base64 where OTLP/JSON wants hex) is left
out and described in :attr:`DecodedRequest.rejected`, for OTLP partial success.

Errors::

    OtlpError
    ├── UnsupportedMediaType   415: unknown content type or content encoding
    ├── BodyTooLarge           413: over the size limit, before or after decompression
    └── MalformedRequest       400: undecodable protobuf, JSON or gzip
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_MEDIA_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}
_ENCODINGS = frozenset({"", "identity", "gzip", "x-gzip"})

#: Largest request body accepted, compressed or not.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024

# DateTime64(9) holds signed 64-bit nanoseconds; larger fixed64 values cannot be stored.
_MAX_TIME_NS = 2**63 - 1
_STATUS_NAMES = ("UNSET", "OK", "ERROR")
_SCALARS = frozenset({"string_value", "int_value", "double_value", "bool_value"})
_STATUS_BY_JSON_NAME = {"STATUS_CODE_UNSET": 0, "STATUS_CODE_OK": 1, "STATUS_CODE_ERROR": 2}
_KIND_BY_JSON_NAME = {
    "SPAN_KIND_UNSPECIFIED": 0,
    "SPAN_KIND_INTERNAL": 1,
    "SPAN_KIND_SERVER": 2,
    "SPAN_KIND_CLIENT": 3,
    "SPAN_KIND_PRODUCER": 4,
    "SPAN_KIND_CONSUMER": 5,
}
_HEX_TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
_HEX_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16
# A JSON escape of a UTF-16 surrogate: only then can json.loads produce a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")

AttrValue: TypeAlias = (
    "str | bool | int | float | bytes | list[AttrValue] | dict[str, AttrValue] | None"
)


class OtlpError(Exception):
    """A request that cannot be read at all; nothing of it is stored."""

    status_code = 400


class UnsupportedMediaType(OtlpError):
    """The content type or content encoding is not one that OTLP/HTTP defines."""

    status_code = 415


class BodyTooLarge(OtlpError):
    """The body is over the size limit, before or after decompression."""

    status_code = 413


class MalformedRequest(OtlpError):
    """The body is not valid protobuf, JSON or gzip, or not shaped like an OTLP request."""

    status_code = 400


class SpanRejected(Exception):
    """One span is invalid; the rest of its request is still stored."""


@dataclass(slots=True)
class SpanData:
    """One span in wire-neutral form: ids are lower-case hex, times are Unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: str
    attributes: dict[str, AttrValue]
    scope_name: str = ""


@dataclass(slots=True)
class ResourceSpans:
    """The spans of one resource, with the resource's attributes."""

    attributes: dict[str, AttrValue]
    spans: list[SpanData] = field(default_factory=list)


@dataclass(slots=True)
class DecodedRequest:
    """A decoded export request: the valid spans by resource, and why others were rejected."""

    resources: list[ResourceSpans] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def span_count(self) -> int:
        return sum(len(r.spans) for r in self.resources)


def media_type(content_type: str | None) -> str:
    """The OTLP media type of a ``Content-Type`` header, or raise UnsupportedMediaType."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        return _MEDIA_TYPES[value]
    except KeyError:
        raise UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported; use {PROTOBUF!r} or {JSON!r}"
        ) from None


async def read_body(chunks: AsyncIterable[bytes], max_bytes: int) -> bytes:
    """Collect a request body, refusing it as soon as it passes ``max_bytes``.

    Needed besides a ``Content-Length`` check: a chunked request declares no length.
    """
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > max_bytes:
            raise BodyTooLarge(f"request body is over the limit of {max_bytes} bytes")
    return bytes(body)


def decompress(
    body: bytes, content_encoding: str | None, max_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> bytes:
    """The body after its ``Content-Encoding``, stopping as soon as it passes ``max_bytes``."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in _ENCODINGS:
        raise UnsupportedMediaType(
            f"Content-Encoding {content_encoding!r} is not supported; use 'gzip' or none"
        )
    if len(body) > max_bytes:
        raise BodyTooLarge(f"request body of {len(body)} bytes is over the limit of {max_bytes}")
    if encoding in ("", "identity"):
        return body

    out = bytearray()
    rest = body
    try:
        # A gzip stream may hold several members; each gets its own decompressor.
        while rest:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            out += inflater.decompress(rest, max_bytes + 1 - len(out))
            if len(out) > max_bytes:
                raise BodyTooLarge(f"gzip body inflates past the limit of {max_bytes} bytes")
            if not inflater.eof:
                raise MalformedRequest("gzip body is truncated")
            rest = inflater.unused_data
    except zlib.error as exc:
        raise MalformedRequest(f"gzip body cannot be decompressed: {exc}") from exc
    return bytes(out)


def decode(body: bytes, media: str) -> DecodedRequest:
    """Decode a plain (already decompressed) body of the given OTLP media type."""
    if media == PROTOBUF:
        return decode_protobuf(body)
    return decode_json(body)


# --- protobuf --------------------------------------------------------------------------------


def decode_protobuf(body: bytes) -> DecodedRequest:
    """Decode an ``ExportTraceServiceRequest`` in binary protobuf."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise MalformedRequest(f"protobuf body cannot be decoded: {exc}") from exc

    decoded = DecodedRequest()
    for r_index, resource_spans in enumerate(request.resource_spans):
        resource = ResourceSpans(_pb_attributes(resource_spans.resource.attributes))
        for s_index, scope_spans in enumerate(resource_spans.scope_spans):
            scope_name = scope_spans.scope.name
            for index, span in enumerate(scope_spans.spans):
                try:
                    resource.spans.append(_pb_span(span, scope_name))
                except SpanRejected as exc:
                    where = f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{index}]"
                    decoded.rejected.append(f"{where}: {exc}")
        decoded.resources.append(resource)
    return decoded


def _pb_span(span: Any, scope_name: str) -> SpanData:
    trace_id = _pb_id(span.trace_id, 16, "traceId")
    span_id = _pb_id(span.span_id, 8, "spanId")
    parent = span.parent_span_id
    if parent and len(parent) != 8:
        raise SpanRejected(f"parentSpanId {parent.hex()!r} is not 8 bytes long")
    if parent == b"\0" * 8:
        parent = b""
    start_ns = _checked_time(span.start_time_unix_nano, "startTimeUnixNano")
    end_ns = _checked_time(span.end_time_unix_nano, "endTimeUnixNano")
    return SpanData(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent.hex(),
        name=span.name,
        kind=span.kind,
        start_ns=start_ns,
        end_ns=end_ns,
        status_code=_status_name(span.status.code),
        attributes=_pb_attributes(span.attributes),
        scope_name=scope_name,
    )


def _status_name(code: int) -> str:
    return _STATUS_NAMES[code] if 0 <= code < len(_STATUS_NAMES) else "UNSET"


def _pb_id(raw: bytes, size: int, name: str) -> str:
    if len(raw) != size:
        raise SpanRejected(f"{name} {raw.hex()!r} is not {size} bytes long")
    if raw == b"\0" * size:
        raise SpanRejected(f"{name} {raw.hex()!r} is all zeros, which OTLP defines as invalid")
    return raw.hex()


def _pb_attributes(key_values: Any) -> dict[str, AttrValue]:
    # The hot loop of ingest: scalars (nearly every attribute) are read without a call.
    attributes: dict[str, AttrValue] = {}
    for kv in key_values:
        value = kv.value
        which = value.WhichOneof("value")
        attributes[kv.key] = getattr(value, which) if which in _SCALARS else _pb_value(value)
    return attributes


def _pb_value(value: Any) -> AttrValue:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value  # type: ignore[no-any-return]
    if which == "int_value":
        return value.int_value  # type: ignore[no-any-return]
    if which == "double_value":
        return value.double_value  # type: ignore[no-any-return]
    if which == "bool_value":
        return value.bool_value  # type: ignore[no-any-return]
    if which == "array_value":
        return [_pb_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return bytes(value.bytes_value)
    return None


# --- JSON ------------------------------------------------------------------------------------


def decode_json(body: bytes) -> DecodedRequest:
    """Decode an ``ExportTraceServiceRequest`` in OTLP/JSON.

    Parsed by hand rather than with ``google.protobuf.json_format``: OTLP/JSON writes ids as
    hex, which ``json_format`` would silently read as base64 and turn into wrong ids.
    """
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise MalformedRequest(f"JSON body cannot be decoded: {exc}") from exc
    if _SURROGATE_ESCAPE.search(body):
        document = _replace_lone_surrogates(document)
    if not isinstance(document, dict):
        raise MalformedRequest(f"JSON body must be an object, got {type(document).__name__}")

    decoded = DecodedRequest()
    for r_index, resource_spans in enumerate(_json_list(document, "resourceSpans", "")):
        where_r = f"resourceSpans[{r_index}]"
        _require_object(resource_spans, where_r)
        resource = ResourceSpans({})
        resource_object = resource_spans.get("resource") or {}
        try:
            _require_object(resource_object, "resource")
            resource.attributes = _json_attributes(resource_object.get("attributes"))
        except (SpanRejected, MalformedRequest) as exc:
            # Without its resource no span of this group can be attributed to a project.
            count = sum(
                len(s.get("spans") or ()) if isinstance(s, dict) else 0
                for s in resource_spans.get("scopeSpans") or ()
            )
            decoded.rejected.extend([f"{where_r}: {exc}"] * count)
            continue
        for s_index, scope_spans in enumerate(_json_list(resource_spans, "scopeSpans", where_r)):
            where_s = f"{where_r}.scopeSpans[{s_index}]"
            _require_object(scope_spans, where_s)
            scope = scope_spans.get("scope") or {}
            scope_name = scope.get("name", "") if isinstance(scope, dict) else ""
            if not isinstance(scope_name, str):
                scope_name = str(scope_name)
            for index, span in enumerate(_json_list(scope_spans, "spans", where_s)):
                try:
                    resource.spans.append(_json_span(span, scope_name))
                except SpanRejected as exc:
                    decoded.rejected.append(f"{where_s}.spans[{index}]: {exc}")
        decoded.resources.append(resource)
    return decoded


def _json_list(parent: dict[str, Any], key: str, where: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        path = f"{where}.{key}" if where else key
        raise MalformedRequest(f"{path} must be a list, got {type(value).__name__}")
    return value


def _require_object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise MalformedRequest(f"{where} must be an object, got {type(value).__name__}")


def _json_span(span: Any, scope_name: str) -> SpanData:
    if not isinstance(span, dict):
        raise SpanRejected(f"span must be an object, got {type(span).__name__}")
    trace_id = _json_id(span.get("traceId"), _HEX_TRACE_ID, _ZERO_TRACE_ID, "traceId", 32)
    span_id = _json_id(span.get("spanId"), _HEX_SPAN_ID, _ZERO_SPAN_ID, "spanId", 16)
    parent = span.get("parentSpanId") or ""
    if parent:
        if not isinstance(parent, str) or not _HEX_SPAN_ID.fullmatch(parent):
            raise SpanRejected(f"parentSpanId {parent!r} is not 16 hex digits")
        parent = "" if parent == _ZERO_SPAN_ID else parent.lower()

    name = span.get("name", "")
    if not isinstance(name, str):
        raise SpanRejected(f"name {name!r} is not a string")
    status = span.get("status") or {}
    if not isinstance(status, dict):
        raise SpanRejected(f"status {status!r} is not an object")
    code = _json_enum(status.get("code", 0), _STATUS_BY_JSON_NAME, "status.code")
    return SpanData(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name=name,
        kind=_json_enum(span.get("kind", 0), _KIND_BY_JSON_NAME, "kind"),
        start_ns=_json_time(span.get("startTimeUnixNano", 0), "startTimeUnixNano"),
        end_ns=_json_time(span.get("endTimeUnixNano", 0), "endTimeUnixNano"),
        status_code=_status_name(code),
        attributes=_json_attributes(span.get("attributes")),
        scope_name=scope_name,
    )


def _json_id(value: Any, pattern: re.Pattern[str], zero: str, name: str, digits: int) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        hint = ""
        if isinstance(value, str) and value.endswith("="):
            hint = " (OTLP/JSON ids are hex, not base64)"
        raise SpanRejected(f"{name} {value!r} is not {digits} hex digits{hint}")
    hex_id: str = value.lower()
    if hex_id == zero:
        raise SpanRejected(f"{name} {value!r} is all zeros, which OTLP defines as invalid")
    return hex_id


def _json_time(value: Any, name: str) -> int:
    return _checked_time(_json_int(value, name), name)


def _checked_time(value: int, name: str) -> int:
    if not 0 <= value <= _MAX_TIME_NS:
        raise SpanRejected(f"{name} {value!r} is outside the storable range 0..{_MAX_TIME_NS}")
    return value


def _json_int(value: Any, name: str) -> int:
    """An int64 field: a decimal string or a JSON number."""
    if type(value) is int:
        return value
    if type(value) is str:
        try:
            return int(value, 10)
        except ValueError:
            pass
    elif type(value) is float and value.is_integer():
        return int(value)
    raise SpanRejected(f"{name} {value!r} is not an integer")


def _json_enum(value: Any, names: dict[str, int], field_name: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, str) and value in names:
        return names[value]
    raise SpanRejected(f"{field_name} {value!r} is not a known enum value")


def _json_attributes(key_values: Any) -> dict[str, AttrValue]:
    if not key_values:
        return {}
    if not isinstance(key_values, list):
        raise SpanRejected(f"attributes must be a list, got {type(key_values).__name__}")
    attributes: dict[str, AttrValue] = {}
    for kv in key_values:
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise SpanRejected(f"attribute {kv!r} has no string key")
        attributes[kv["key"]] = _json_value(kv.get("value"), kv["key"])
    return attributes


def _json_value(value: Any, key: str) -> AttrValue:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SpanRejected(f"attribute {key!r}: value {value!r} is not an AnyValue object")
    for kind, inner in value.items():
        if kind == "stringValue":
            if isinstance(inner, str):
                return inner
        elif kind == "intValue":
            return _json_int(inner, f"attribute {key!r} intValue")
        elif kind == "doubleValue":
            return _json_double(inner, key)
        elif kind == "boolValue":
            if isinstance(inner, bool):
                return inner
        elif kind == "arrayValue":
            items = inner.get("values") if isinstance(inner, dict) else None
            if isinstance(items, list) or items is None:
                return [_json_value(item, key) for item in items or ()]
        elif kind == "kvlistValue":
            items = inner.get("values") if isinstance(inner, dict) else None
            if isinstance(items, list) or items is None:
                return _json_attributes(items)
        elif kind == "bytesValue":
            if isinstance(inner, str):
                try:
                    return base64.b64decode(inner, validate=True)
                except binascii.Error:
                    pass
        else:
            continue  # a field this version of OTLP does not know: ignored, as the spec says
        raise SpanRejected(f"attribute {key!r}: {kind} {inner!r} is not valid")
    return None


def _json_double(value: Any, key: str) -> float:
    if type(value) in (int, float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            # proto3 JSON spells the special values "NaN", "Infinity" and "-Infinity".
            if math.isfinite(number) or value in ("NaN", "Infinity", "-Infinity"):
                return number
    raise SpanRejected(f"attribute {key!r}: doubleValue {value!r} is not a number")


def _replace_lone_surrogates(value: Any) -> Any:
    """Replace unpaired UTF-16 surrogates, which no UTF-8 store can hold, with U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(k): _replace_lone_surrogates(v) for k, v in value.items()}
    return value
