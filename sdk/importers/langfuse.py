"""Langfuse trace exports replayed as the OTLP spans they came from.

A Langfuse export is ``{"trace": {...}, "observations": [...]}``. Each observation was one
OpenTelemetry span; its ``metadata`` keeps the span's original ``attributes``, its
``resourceAttributes`` and its instrumentation ``scope``. The replay sends every observation
as a span with those attributes, its own trace, span and parent ids and its times, so the
collector reads it by the same foreign-span rules as live data (``docs/dialects.md``).

Spans written by the Langfuse SDK itself (scope ``langfuse-sdk``) lost their usage
attributes to Langfuse's own fields on ingestion; for every observation with
``usageDetails`` the replay adds them back as the Langfuse SDK names them,
``langfuse.observation.usage_details`` (JSON) and ``langfuse.observation.model.name``.
The collector reads these only when no other dialect on the span carries usage.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from agentledger.importers.otlp import ImportReport, Sender, attributes, span
from agentledger.schemas import attributes as attr

__all__ = ["ImportReport", "LangfuseFormatError", "LangfuseTrace", "import_files", "read_file"]

USAGE_DETAILS = "langfuse.observation.usage_details"
MODEL_NAME = "langfuse.observation.model.name"
_HEX = frozenset("0123456789abcdef")


class LangfuseFormatError(ValueError):
    """A file is not a Langfuse trace export."""


@dataclass(slots=True)
class LangfuseTrace:
    """The spans of one file, grouped by (resource, scope) as they will be sent."""

    path: str
    trace_id: str
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def span_count(self) -> int:
        return sum(len(spans) for spans in self.groups.values())


def _time_ns(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _hex_id(value: Any, digits: int) -> str:
    text = value.lower() if isinstance(value, str) else ""
    if len(text) == digits and set(text) <= _HEX and set(text) != {"0"}:
        return text
    return ""


def _metadata(observation: dict[str, Any]) -> dict[str, Any] | None:
    raw = observation.get("metadata")
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None


def read_file(path: str, report: ImportReport, project: str = "") -> LangfuseTrace:
    """The spans of one Langfuse export; invalid observations are counted in ``report``.

    Raises:
        LangfuseFormatError: the file cannot be read or is not a Langfuse trace export.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except OSError as exc:
        raise LangfuseFormatError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LangfuseFormatError(f"{path}: not a Langfuse export: not JSON ({exc})") from exc
    observations = data.get("observations") if isinstance(data, dict) else None
    trace = data.get("trace") if isinstance(data, dict) else None
    if not isinstance(observations, list) or not isinstance(trace, dict):
        raise LangfuseFormatError(
            f"{path}: not a Langfuse trace export: expected fields 'trace' (object) and "
            "'observations' (list)"
        )
    trace_id = _hex_id(trace.get("id"), 32)
    if not trace_id:
        raise LangfuseFormatError(
            f"{path}: field 'trace.id' must be 32 hex digits, got {trace.get('id')!r}"
        )

    found = LangfuseTrace(path=path, trace_id=trace_id)
    for index, observation in enumerate(observations):
        where = f"{path}: observations[{index}]"
        report.read += 1
        if not isinstance(observation, dict):
            report.skip("observation is not an object", where)
            continue
        span_id = _hex_id(observation.get("id"), 16)
        if not span_id:
            report.skip("observation without an 'id' of 16 hex digits", where)
            continue
        own_trace = _hex_id(observation.get("traceId"), 32) or trace_id
        if own_trace != trace_id:
            report.skip("observation of another trace than 'trace.id'", where)
            continue
        parent = observation.get("parentObservationId")
        parent_id = _hex_id(parent, 16)
        if parent and not parent_id:
            report.skip("observation with an invalid 'parentObservationId'", where)
            continue
        start_ns = _time_ns(observation.get("startTime"))
        if start_ns is None:
            report.skip("observation without a valid 'startTime'", where)
            continue
        end_ns = _time_ns(observation.get("endTime")) or start_ns
        metadata = _metadata(observation)
        if metadata is None:
            report.skip("observation whose 'metadata' is not a JSON object", where)
            continue

        attrs = metadata.get("attributes")
        attrs = dict(attrs) if isinstance(attrs, dict) else {}
        usage = observation.get("usageDetails")
        if isinstance(usage, dict) and usage:
            attrs[USAGE_DETAILS] = json.dumps(usage, sort_keys=True)
        if isinstance(observation.get("model"), str) and observation["model"]:
            attrs.setdefault(MODEL_NAME, observation["model"])
        resource = metadata.get("resourceAttributes")
        resource = dict(resource) if isinstance(resource, dict) else {}
        if project:
            resource[attr.PROJECT] = project
        scope = metadata.get("scope")
        scope = scope if isinstance(scope, dict) else {}
        resource_key = json.dumps(resource, sort_keys=True, default=str)
        found.resources[resource_key] = resource
        group = (resource_key, str(scope.get("name") or ""), str(scope.get("version") or ""))
        found.groups.setdefault(group, []).append(
            span(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent_id,
                name=str(observation.get("name") or ""),
                start_ns=start_ns,
                end_ns=end_ns,
                attrs=attrs,
                error=observation.get("level") == "ERROR",
            )
        )
    return found


def _payload(found: LangfuseTrace) -> dict[str, Any]:
    """One request holding every span of the trace, so that roll-ups are seen together."""
    by_resource: dict[str, list[dict[str, Any]]] = {}
    for (resource_key, scope, version), spans in found.groups.items():
        by_resource.setdefault(resource_key, []).append(
            {"scope": {"name": scope, "version": version}, "spans": spans}
        )
    return {
        "resourceSpans": [
            {"resource": {"attributes": attributes(found.resources[key])}, "scopeSpans": scopes}
            for key, scopes in by_resource.items()
        ]
    }


def import_files(
    paths: Iterable[str],
    *,
    endpoint: str,
    project: str = "",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Replay Langfuse trace exports into the collector at ``endpoint``; returns an exit code.

    Every file is read and checked before anything is sent (exit code 2 on a bad file);
    exit code 1 when spans did not arrive. ``project`` sets ``agentledger.project``.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    command = "agentledger import langfuse"
    report = ImportReport()
    traces = []
    for path in paths:
        try:
            traces.append(read_file(path, report, project))
        except LangfuseFormatError as exc:
            print(f"{command}: {exc}; nothing was sent", file=err)
            return 2
    try:
        sender = Sender(endpoint, report)
    except ValueError as exc:
        print(f"{command}: {exc}; nothing was sent", file=err)
        return 2
    for found in traces:
        sender.send(_payload(found))
    report.summarize(command, "observations", out)
    return report.exit_code(command, endpoint, err)
