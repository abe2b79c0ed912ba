"""Aider leaderboard records as agent runs, as far as their aggregate form allows.

A record (one YAML list entry of ``aider/website/_data/*.yml``) is one benchmark run of one
model configuration: ``test_cases`` exercises, ``pass_num_1`` solved at the first try,
``pass_num_2`` solved after one retry that saw the test errors, and ``total_cost`` in USD.

What is recoverable, and how it is recorded (see ``docs/dialects.md``):

- one run per exercise (``aider:<file>:<dirname>:<n>``, workflow ``aider-<file>``), its
  outcome correct for ``pass_num_2`` of them: success rates and the count of correct
  outcomes are exact;
- each exercise has attempt 1 of step ``solve``; the ``test_cases - pass_num_1`` exercises
  not solved at once also have attempt 2 (the retry), which is the accepted one;
- the cost: ``total_cost`` spread evenly over all attempts, as one llm call per attempt
  carrying ``agentledger.cost.usd``. The sum per record, cost per correct outcome and the
  cost retry amplification follow from that even split; single exercises' costs do not
  exist in the data and are only averages. A ``total_cost`` of 0 means "not recorded" in
  these files and is stored as unknown.

Not recoverable: which exercises were solved, per-exercise tokens, cost or time. Token
totals (``prompt_tokens``, ``completion_tokens``) of the few records that have them are kept
as attributes on each run span, not as usage.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from agentledger.importers.otlp import ImportReport, Sender, span, span_hex, trace_hex
from agentledger.schemas import attributes as attr

__all__ = ["AiderFormatError", "AiderRecord", "ImportReport", "import_files", "read_file"]

SERVICE_NAME = "aider-benchmark"
STEP = "solve"


class AiderFormatError(ValueError):
    """A file is not an Aider leaderboard (a YAML list of records)."""


@dataclass(frozen=True, slots=True)
class AiderRecord:
    """One benchmark run of one model configuration."""

    source: str
    dirname: str
    model: str
    edit_format: str
    test_cases: int
    pass_first: int
    pass_after_retry: int
    total_cost_usd: float | None
    start_ns: int
    extra: dict[str, Any]

    @property
    def attempts(self) -> int:
        return self.test_cases + (self.test_cases - self.pass_first)


def _count(record: dict[str, Any], number: str, rate: str, cases: int) -> int | None:
    value = record.get(number)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    share = record.get(rate)
    if isinstance(share, int | float) and not isinstance(share, bool):
        return round(share * cases / 100)
    return None


def _start_ns(value: Any) -> int | None:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, date):
        return None
    return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()) * 10**9


def read_file(path: str, report: ImportReport) -> list[AiderRecord]:
    """The usable records of one leaderboard file; the others are counted in ``report``.

    Raises:
        AiderFormatError: the file cannot be read or is not a YAML list of records.
    """
    try:
        import yaml
    except ImportError as exc:
        raise AiderFormatError(
            "reading Aider files needs PyYAML: pip install 'agentledger[importers]'"
        ) from exc
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except OSError as exc:
        raise AiderFormatError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise AiderFormatError(f"{path}: not an Aider leaderboard: not YAML ({exc})") from exc
    if not isinstance(data, list):
        raise AiderFormatError(f"{path}: not an Aider leaderboard: expected a list of records")

    source = Path(path).stem
    records: list[AiderRecord] = []
    seen: set[str] = set()
    for index, record in enumerate(data):
        where = f"{path}: [{index}]"
        report.read += 1
        if not isinstance(record, dict):
            report.skip("record is not a mapping", where)
            continue
        cases = record.get("test_cases")
        if not isinstance(cases, int) or isinstance(cases, bool) or cases <= 0:
            report.skip("record without a positive 'test_cases'", where)
            continue
        first = _count(record, "pass_num_1", "pass_rate_1", cases)
        after = _count(record, "pass_num_2", "pass_rate_2", cases)
        if first is None:
            report.skip("record without 'pass_num_1' or 'pass_rate_1'", where)
            continue
        if after is None:
            # Benchmarks without a retry (e.g. refactoring) solved what they solved at once.
            after = first
        if not 0 <= first <= after <= cases:
            report.skip("record whose pass counts are not 0 <= first <= retry <= cases", where)
            continue
        model, dirname = record.get("model"), record.get("dirname")
        if not isinstance(model, str) or not model or not isinstance(dirname, str) or not dirname:
            report.skip("record without a 'model' and a 'dirname'", where)
            continue
        if dirname in seen:
            report.skip("record repeats a 'dirname' of the same file", where)
            continue
        start_ns = _start_ns(record.get("date"))
        if start_ns is None:
            report.skip("record without a valid 'date'", where)
            continue
        cost = record.get("total_cost")
        if cost is not None and (
            isinstance(cost, bool) or not isinstance(cost, int | float) or cost < 0
        ):
            report.skip("record with an invalid 'total_cost'", where)
            continue
        seen.add(dirname)
        extra = {
            f"aider.{key}": record[key]
            for key in (
                "edit_format",
                "editor_model",
                "prompt_tokens",
                "completion_tokens",
                "thinking_tokens",
                "reasoning_effort",
                "seconds_per_case",
            )
            if isinstance(record.get(key), str | int | float) and not isinstance(record[key], bool)
        }
        records.append(
            AiderRecord(
                source=source,
                dirname=dirname,
                model=model,
                edit_format=str(record.get("edit_format") or ""),
                test_cases=cases,
                pass_first=first,
                pass_after_retry=after,
                total_cost_usd=float(cost) if cost else None,
                start_ns=start_ns,
                extra=extra,
            )
        )
    return records


def record_spans(record: AiderRecord) -> Iterator[dict[str, Any]]:
    """Run, step and llm spans of every exercise of a record, with deterministic ids."""
    workflow = f"aider-{record.source}"
    per_attempt = None if record.total_cost_usd is None else record.total_cost_usd / record.attempts
    for n in range(record.test_cases):
        run_id = f"aider:{record.source}:{record.dirname}:{n}"
        trace_id = trace_hex(run_id)
        run_span = span_hex(run_id, "run")
        start = record.start_ns + n * 10**9
        context = {attr.RUN_ID: run_id, attr.WORKFLOW: workflow}
        correct = n < record.pass_after_retry
        yield span(
            trace_id=trace_id,
            span_id=run_span,
            name=f"run {workflow}",
            start_ns=start,
            end_ns=start + 900_000_000,
            attrs={
                **context,
                **record.extra,
                attr.SPAN_KIND: attr.KIND_RUN,
                attr.OUTCOME: attr.OUTCOME_CORRECT if correct else attr.OUTCOME_INCORRECT,
                "aider.dirname": record.dirname,
            },
        )
        tries = 1 if n < record.pass_first else 2
        for attempt in range(1, tries + 1):
            step_span = span_hex(run_id, f"step{attempt}")
            begin = start + (attempt - 1) * 400_000_000
            step = {
                **context,
                attr.STEP_NAME: STEP,
                attr.STEP_ID: f"{run_id}:{STEP}",
                attr.ATTEMPT: attempt,
            }
            yield span(
                trace_id=trace_id,
                span_id=step_span,
                parent_span_id=run_span,
                name=f"step {STEP}",
                start_ns=begin,
                end_ns=begin + 300_000_000,
                attrs={
                    **step,
                    attr.SPAN_KIND: attr.KIND_STEP,
                    attr.ATTEMPT_ACCEPTED: attempt == tries,
                },
            )
            yield span(
                trace_id=trace_id,
                span_id=span_hex(run_id, f"llm{attempt}"),
                parent_span_id=step_span,
                name=f"chat {record.model}",
                start_ns=begin,
                end_ns=begin + 300_000_000,
                attrs={
                    **step,
                    attr.SPAN_KIND: attr.KIND_LLM,
                    attr.OPERATION_NAME: "chat",
                    attr.REQUEST_MODEL: record.model,
                    attr.COST_USD: per_attempt,
                },
            )


def import_files(
    paths: list[str], *, endpoint: str, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Replay Aider leaderboard files into the collector; returns an exit code (0, 1 or 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    command = "agentledger import aider"
    report = ImportReport()
    records: list[AiderRecord] = []
    try:
        for path in paths:
            records += read_file(path, report)
        sender = Sender(endpoint, report)
    except (AiderFormatError, ValueError) as exc:
        print(f"{command}: {exc}; nothing was sent", file=err)
        return 2
    resource = {attr.SERVICE_NAME: SERVICE_NAME}
    for record in records:
        sender.send_spans(resource, "agentledger.importers.aider", record_spans(record))
    unknown = sum(record.total_cost_usd is None for record in records)
    print(
        f"{command}: {len(records)} records, "
        f"{sum(r.test_cases for r in records)} exercise runs; "
        f"{unknown} records without a recorded cost (stored as unknown)",
        file=out,
    )
    report.summarize(command, "records", out)
    return report.exit_code(command, endpoint, err)
