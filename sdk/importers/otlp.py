"""OTLP/JSON files into the collector, and the OTLP/JSON building blocks of other importers.

``agentledger import otlp FILE...`` posts ``ExportTraceServiceRequest`` documents in the
OTLP/JSON encoding, unchanged, to ``{endpoint}/v1/traces``: the collector reads them exactly
as it reads a live exporter. Each file is checked first; spans that the collector could not
store would be rejected one by one, so they are skipped here with their reason and counted.
The importers of Langfuse, SWE-bench and Aider data build their spans with :func:`span`
and send them with :class:`Sender`. Ids come from the data, so importing again stores
nothing new.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from agentledger import credentials, validation
from agentledger.importers.ids import span_id_for, trace_id_for

__all__ = [
    "ImportReport",
    "OtlpFormatError",
    "Sender",
    "attributes",
    "import_files",
    "read_file",
    "span",
    "span_hex",
    "trace_hex",
]

logger = logging.getLogger(__name__)

TRACES_PATH = "/v1/traces"
#: Spans per OTLP request: well under the collector's body limit for typical spans.
BATCH_SPANS = 500
REQUEST_TIMEOUT_SECONDS = 30.0
_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-fA-F]{16}$")


class OtlpFormatError(ValueError):
    """A file is not an OTLP/JSON trace export."""


@dataclass(slots=True)
class ImportReport:
    """What an import read, skipped (by reason, with the first place seen) and sent."""

    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    first_seen: dict[str, str] = field(default_factory=dict)
    sent: int = 0
    rejected: int = 0
    failed: int = 0

    def skip(self, reason: str, where: str) -> None:
        self.skipped[reason] += 1
        self.first_seen.setdefault(reason, where)

    def summarize(self, command: str, noun: str, out: TextIO) -> None:
        """Print what was read, sent and skipped (by reason) to ``out``."""
        print(
            f"{command}: read {self.read} {noun}, sent {self.sent} spans, "
            f"skipped {sum(self.skipped.values())} items",
            file=out,
        )
        for reason, count in sorted(self.skipped.items()):
            print(f"  {count} x {reason} (first at {self.first_seen[reason]})", file=out)
        if self.rejected:
            print(f"  the collector rejected {self.rejected} spans", file=out)

    def exit_code(self, command: str, endpoint: str, err: TextIO) -> int:
        """0 when every span reached the collector, else 1 (with a message on ``err``)."""
        if self.failed:
            print(
                f"{command}: {self.failed} spans did not reach {endpoint} (is the collector "
                "running?); running the command again is safe: stored spans are not duplicated",
                file=err,
            )
            return 1
        return 0


# --- building spans -----------------------------------------------------------------------------


def trace_hex(key: str) -> str:
    """A deterministic 32-digit trace id for a run key."""
    return f"{trace_id_for(key):032x}"


def span_hex(key: str, label: str) -> str:
    """A deterministic 16-digit span id for the span ``label`` of a run key."""
    return f"{span_id_for(key, label):016x}"


def any_value(value: Any) -> dict[str, Any]:
    """An OTLP/JSON ``AnyValue`` for a JSON-like Python value."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": attributes(value)}}
    return {"stringValue": "" if value is None else str(value)}


def attributes(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """OTLP/JSON ``KeyValue`` list of a mapping; ``None`` values are left out."""
    return [{"key": str(k), "value": any_value(v)} for k, v in values.items() if v is not None]


def span(
    *,
    trace_id: str,
    span_id: str,
    name: str,
    start_ns: int,
    end_ns: int,
    attrs: Mapping[str, Any],
    parent_span_id: str = "",
    error: bool = False,
) -> dict[str, Any]:
    """One OTLP/JSON span (kind internal)."""
    result: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(max(end_ns, start_ns)),
        "attributes": attributes(attrs),
    }
    if parent_span_id:
        result["parentSpanId"] = parent_span_id
    if error:
        result["status"] = {"code": 2}
    return result


def request(
    resource: Mapping[str, Any], scope: str, spans: Sequence[dict[str, Any]], version: str = ""
) -> dict[str, Any]:
    """An ``ExportTraceServiceRequest`` with one resource and one scope."""
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": attributes(resource)},
                "scopeSpans": [{"scope": {"name": scope, "version": version}, "spans": spans}],
            }
        ]
    }


# --- sending ------------------------------------------------------------------------------------


class Sender:
    """Posts OTLP/JSON requests to ``{endpoint}/v1/traces``, counting into a report.

    After the first failed request it stops trying: the rest would fail the same way, and
    a later import sends everything again without duplicates.

    Raises:
        ValueError: ``endpoint`` is not an http:// or https:// URL, or the API key from
            ``AGENTLEDGER_API_KEY`` (set by ``--api-key``) is malformed.
    """

    def __init__(self, endpoint: str, report: ImportReport) -> None:
        self._url = validation.require_endpoint(endpoint, "endpoint") + TRACES_PATH
        self._report = report
        self._headers = {"Content-Type": "application/json"}
        key = credentials.api_key()
        if key is not None:
            self._headers["Authorization"] = f"Bearer {key}"

    def send(self, payload: dict[str, Any]) -> None:
        """Send one request; its spans count as sent, rejected or failed."""
        count = sum(
            len(scope.get("spans", []))
            for resource in payload.get("resourceSpans", [])
            for scope in resource.get("scopeSpans", [])
        )
        if count == 0:
            return
        if self._report.failed:
            self._report.failed += count
            return
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        post = urllib.request.Request(self._url, data=body, headers=self._headers, method="POST")
        try:
            with urllib.request.urlopen(post, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                answer = json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            logger.warning("import: request of %d spans failed: %s", count, exc)
            self._report.failed += count
            return
        partial = answer.get("partialSuccess") or {}
        rejected = int(partial.get("rejectedSpans") or 0)
        if rejected:
            logger.warning(
                "import: collector rejected %d spans: %s", rejected, partial.get("errorMessage")
            )
        self._report.rejected += rejected
        self._report.sent += count - rejected

    def send_spans(
        self, resource: Mapping[str, Any], scope: str, spans: Iterable[dict[str, Any]]
    ) -> None:
        """Send spans of one resource in requests of :data:`BATCH_SPANS`."""
        batch: list[dict[str, Any]] = []
        for one in spans:
            batch.append(one)
            if len(batch) >= BATCH_SPANS:
                self.send(request(resource, scope, batch))
                batch = []
        self.send(request(resource, scope, batch))


# --- OTLP/JSON files ----------------------------------------------------------------------------


def read_file(path: str, report: ImportReport) -> dict[str, Any]:
    """An OTLP/JSON export request with its invalid spans removed (and counted in ``report``).

    Raises:
        OtlpFormatError: the file cannot be read or is not an OTLP/JSON trace export.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except OSError as exc:
        raise OtlpFormatError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OtlpFormatError(f"{path}: not an OTLP/JSON file: not JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("resourceSpans"), list):
        raise OtlpFormatError(
            f"{path}: not an OTLP/JSON trace export: missing list field 'resourceSpans'"
        )

    for r, resource in enumerate(data["resourceSpans"]):
        where = f"{path}: resourceSpans[{r}]"
        scopes = resource.get("scopeSpans") if isinstance(resource, dict) else None
        if not isinstance(scopes, list):
            report.skip("resourceSpans entry without a 'scopeSpans' list", where)
            continue
        for s, scope in enumerate(scopes):
            spans = scope.get("spans") if isinstance(scope, dict) else None
            if not isinstance(spans, list):
                report.skip("scopeSpans entry without a 'spans' list", f"{where}.scopeSpans[{s}]")
                continue
            kept = []
            for n, one in enumerate(spans):
                report.read += 1
                reason = _span_problem(one)
                if reason:
                    report.skip(reason, f"{where}.scopeSpans[{s}].spans[{n}]")
                else:
                    kept.append(one)
            scope["spans"] = kept
    return data


def _span_problem(one: Any) -> str:
    if not isinstance(one, dict):
        return "span is not an object"
    if not _TRACE_ID.match(str(one.get("traceId", ""))) or set(one["traceId"]) == {"0"}:
        return "span without a valid 'traceId' (32 hex digits, not all zero)"
    if not _SPAN_ID.match(str(one.get("spanId", ""))) or set(one["spanId"]) == {"0"}:
        return "span without a valid 'spanId' (16 hex digits, not all zero)"
    parent = one.get("parentSpanId") or ""
    if parent and not _SPAN_ID.match(str(parent)):
        return "span with an invalid 'parentSpanId'"
    if not str(one.get("startTimeUnixNano", "")).isdigit():
        return "span without a valid 'startTimeUnixNano'"
    return ""


def import_files(
    paths: Iterable[str],
    *,
    endpoint: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Post OTLP/JSON files to the collector at ``endpoint``; returns an exit code.

    Every file is read and checked before anything is sent: an unreadable file or one of
    another format sends nothing (exit code 2). Exit code 1 when spans did not arrive.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    command = "agentledger import otlp"
    report = ImportReport()
    documents = []
    for path in paths:
        try:
            documents.append(read_file(path, report))
        except OtlpFormatError as exc:
            print(f"{command}: {exc}; nothing was sent", file=err)
            return 2
    try:
        sender = Sender(endpoint, report)
    except ValueError as exc:
        print(f"{command}: {exc}; nothing was sent", file=err)
        return 2
    for document in documents:
        # One request per file: the spans of a trace stay together, as the roll-up and
        # workflow rules of the collector see one request at a time.
        document["resourceSpans"] = [r for r in document["resourceSpans"] if isinstance(r, dict)]
        sender.send(document)
    report.summarize(command, "spans", out)
    return report.exit_code(command, endpoint, err)
