"""The SWE-bench bash-only leaderboard's per-instance results as agent runs.

The board (``leaderboards.json`` of SWE-bench/swe-bench.github.io, CC BY-NC 4.0: read it
where it lies, never copy it into a project) lists, for most models run with the same
mini-swe-agent harness on the 500 Verified tasks, ``per_instance_details``: for each task
its cost in USD, its number of API calls and whether it was resolved. Each becomes one run
(workflow ``swebench-bash-only``) holding one llm span on the model that carries the
instance's reported cost (``agentledger.cost.usd``) and its API call count
(``swebench.api_calls``), with the outcome ``correct`` when resolved. Tokens are not in the
file and stay unknown. Run ids are ``swebench:<folder>:<instance>``, so ids are stable.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from agentledger.importers.otlp import ImportReport, Sender, span, span_hex, trace_hex
from agentledger.schemas import attributes as attr

__all__ = [
    "BOARD",
    "ImportReport",
    "SwebenchFormatError",
    "SwebenchRun",
    "import_file",
    "read_file",
]

BOARD = "bash-only"
WORKFLOW = "swebench-bash-only"
SERVICE_NAME = "mini-swe-agent"
API_CALLS = "swebench.api_calls"
_MODEL_TAG = "Model: "


class SwebenchFormatError(ValueError):
    """The file is not a SWE-bench leaderboards file with a bash-only board."""


@dataclass(frozen=True, slots=True)
class SwebenchRun:
    """One model's attempt at one instance."""

    run_id: str
    model: str
    instance_id: str
    submission: str
    cost_usd: float
    api_calls: int
    resolved: bool
    start_ns: int


def _model(result: dict[str, Any]) -> str:
    for tag in result.get("tags") or []:
        if isinstance(tag, str) and tag.startswith(_MODEL_TAG) and tag[len(_MODEL_TAG) :]:
            return tag[len(_MODEL_TAG) :].strip()
    return ""


def _date_ns(value: Any) -> int | None:
    try:
        moment = datetime.strptime(str(value), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp()) * 1_000_000_000


def read_file(path: str, report: ImportReport) -> list[SwebenchRun]:
    """The runs of the bash-only board; entries that cannot be runs are counted in ``report``.

    Raises:
        SwebenchFormatError: the file cannot be read or has no bash-only board.
    """
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except OSError as exc:
        raise SwebenchFormatError(f"{path}: cannot read the file: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SwebenchFormatError(f"{path}: not a leaderboards file: not JSON ({exc})") from exc
    boards = data.get("leaderboards") if isinstance(data, dict) else None
    if not isinstance(boards, list):
        raise SwebenchFormatError(f"{path}: not a leaderboards file: no list 'leaderboards'")
    board = next((b for b in boards if isinstance(b, dict) and b.get("name") == BOARD), None)
    if board is None or not isinstance(board.get("results"), list):
        raise SwebenchFormatError(f"{path}: no board named {BOARD!r} with a 'results' list")

    runs: list[SwebenchRun] = []
    seen_models: set[str] = set()
    for index, result in enumerate(board["results"]):
        where = f"{path}: {BOARD}.results[{index}]"
        if not isinstance(result, dict):
            report.skip("result is not an object", where)
            continue
        details = result.get("per_instance_details")
        if not isinstance(details, dict) or not details:
            report.skip("result without 'per_instance_details' (aggregate only)", where)
            continue
        model = _model(result)
        folder = result.get("folder")
        start_ns = _date_ns(result.get("date"))
        if not model:
            report.skip("result without a 'Model: ...' tag", where)
            continue
        if not isinstance(folder, str) or not folder:
            report.skip("result without a 'folder'", where)
            continue
        if start_ns is None:
            report.skip("result without a 'date' (YYYY-MM-DD)", where)
            continue
        if model in seen_models:
            report.skip("second result of the same model", where)
            continue
        seen_models.add(model)
        for position, (instance, item) in enumerate(sorted(details.items())):
            report.read += 1
            here = f"{where}.per_instance_details[{instance!r}]"
            problem = _item_problem(item)
            if problem:
                report.skip(problem, here)
                continue
            runs.append(
                SwebenchRun(
                    run_id=f"swebench:{folder}:{instance}",
                    model=model,
                    instance_id=instance,
                    submission=folder,
                    cost_usd=float(item["cost"]),
                    api_calls=int(item["api_calls"]),
                    resolved=item["resolved"],
                    # Instances have no times: they are spread one second apart on the day.
                    start_ns=start_ns + position * 1_000_000_000,
                )
            )
    return runs


def _item_problem(item: Any) -> str:
    if not isinstance(item, dict):
        return "instance details are not an object"
    cost = item.get("cost")
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not math.isfinite(cost):
        return "instance without a numeric 'cost'"
    if cost < 0:
        return "instance with a negative 'cost'"
    calls = item.get("api_calls")
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 0:
        return "instance without an integer 'api_calls'"
    if not isinstance(item.get("resolved"), bool):
        return "instance without a boolean 'resolved'"
    return ""


def run_spans(run: SwebenchRun) -> Iterator[dict[str, Any]]:
    """The run span and the llm span of one run, with deterministic ids."""
    trace_id = trace_hex(run.run_id)
    run_span_id = span_hex(run.run_id, "run")
    end_ns = run.start_ns + 500_000_000
    yield span(
        trace_id=trace_id,
        span_id=run_span_id,
        name=f"run {WORKFLOW}",
        start_ns=run.start_ns,
        end_ns=end_ns,
        attrs={
            attr.SPAN_KIND: attr.KIND_RUN,
            attr.RUN_ID: run.run_id,
            attr.WORKFLOW: WORKFLOW,
            attr.OUTCOME: attr.OUTCOME_CORRECT if run.resolved else attr.OUTCOME_INCORRECT,
            "swebench.instance_id": run.instance_id,
            "swebench.submission": run.submission,
        },
    )
    yield span(
        trace_id=trace_id,
        span_id=span_hex(run.run_id, "llm"),
        parent_span_id=run_span_id,
        name=f"chat {run.model}",
        start_ns=run.start_ns,
        end_ns=end_ns,
        attrs={
            attr.SPAN_KIND: attr.KIND_LLM,
            attr.RUN_ID: run.run_id,
            attr.WORKFLOW: WORKFLOW,
            attr.OPERATION_NAME: "chat",
            attr.REQUEST_MODEL: run.model,
            attr.COST_USD: run.cost_usd,
            API_CALLS: run.api_calls,
        },
    )


def import_file(
    path: str, *, endpoint: str, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Replay the bash-only board of ``path`` into the collector; returns an exit code.

    Exit code 2 when the file is not a leaderboards file (nothing sent), 1 when spans did
    not arrive, else 0.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    command = "agentledger import swebench"
    report = ImportReport()
    try:
        runs = read_file(path, report)
        sender = Sender(endpoint, report)
    except (SwebenchFormatError, ValueError) as exc:
        print(f"{command}: {exc}; nothing was sent", file=err)
        return 2
    resource = {attr.SERVICE_NAME: SERVICE_NAME}
    sender.send_spans(
        resource, "agentledger.importers.swebench", (one for run in runs for one in run_spans(run))
    )
    resolved = sum(run.resolved for run in runs)
    print(
        f"{command}: {len(runs)} runs of {len({r.model for r in runs})} models, "
        f"{resolved} resolved, reported cost ${sum(r.cost_usd for r in runs):,.2f}",
        file=out,
    )
    report.summarize(command, "instances", out)
    return report.exit_code(command, endpoint, err)
