"""Replay τ²-bench trajectory files through the SDK, as if the agent had been instrumented.

Mapping (one simulation at a time):

- a simulation is a run: run id = its ``id``; workflow ``tau2-<domain>``; outcome ``correct``
  when ``reward_info.reward`` is 1, ``incorrect`` for any other reward, and unknown (no verdict)
  when the simulation carries no reward at all;
- each assistant message with ``usage`` is one step (``tool_call`` when it has tool calls, else
  ``reply``), attempt 1 and accepted, holding one llm call on the agent's model
  (``info.agent_info.llm``): ``prompt_tokens`` are the input, ``completion_tokens`` the
  output, the message's ``cost`` the reported cost, and the re-ingested tokens come from the
  SDK's carry-forward estimate (the agent re-sends the whole conversation on every call);
- user-simulator messages are another model's calls, not the agent's, and are not imported;
  neither is the opening greeting, which has no usage because no model produced it.

Time: timestamps without a zone are read as UTC. A message's timestamp is when the call's
answer arrived, so it is the END of the call. The call STARTS at the timestamp of the message
before it (the user turn or tool result that the agent answered): the agent loop sends the
request as soon as that message is in, so this is the closest bound the files allow (it
includes a little harness time, never less than the call took). The first message starts at
the simulation's ``start_time``.

Ids: trace and span ids derive from the run id and the message index, so importing the same
file twice stores nothing new (the collector de-duplicates on project, trace id and span id).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agentledger.importers.delivery import delivery_code, open_ledger
from agentledger.importers.ids import DeterministicIdGenerator
from agentledger.schemas import attributes as attr

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from agentledger import Ledger

__all__ = [
    "Tau2Call",
    "Tau2File",
    "Tau2FormatError",
    "Tau2Run",
    "import_files",
    "read_file",
]

logger = logging.getLogger(__name__)

SERVICE_NAME = "tau2-import"
STEP_TOOL_CALL = "tool_call"
STEP_REPLY = "reply"
#: A progress line goes to stderr after this many runs.
PROGRESS_EVERY_RUNS = 25

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# τ²-bench calls models through LiteLLM, which sends a bare model name of these families to
# the vendor's own API. Other names (or names with a routing prefix such as "bedrock/") say
# nothing certain about who served the call, so their provider stays unset.
_PROVIDER_BY_PREFIX = (
    ("claude-", "anthropic"),
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
)


class Tau2FormatError(ValueError):
    """A file is not a τ²-bench results file; the message names the file and the field."""


@dataclass(frozen=True, slots=True)
class Tau2Call:
    """One agent model call: an assistant message with usage."""

    index: int
    step_name: str
    start_time_ns: int
    end_time_ns: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


@dataclass(frozen=True, slots=True)
class Tau2Run:
    """One simulation, ready to replay."""

    run_id: str
    workflow: str
    model: str
    provider: str | None
    outcome: str | None
    start_time_ns: int
    end_time_ns: int
    calls: tuple[Tau2Call, ...]


@dataclass(slots=True)
class Tau2File:
    """What :func:`read_file` found in one file: the runs and the items it skipped."""

    path: str
    runs: list[Tau2Run] = field(default_factory=list)
    #: Reason -> how many items were skipped for it.
    skipped: Counter[str] = field(default_factory=Counter)
    #: Reason -> where it first happened (e.g. ``simulations[3].messages[7]``).
    first_seen: dict[str, str] = field(default_factory=dict)

    def skip(self, reason: str, where: str) -> None:
        """Count an item that cannot be replayed."""
        logger.debug("tau2: item skipped: file=%s at=%s reason=%s", self.path, where, reason)
        self.skipped[reason] += 1
        self.first_seen.setdefault(reason, where)


# --- reading ------------------------------------------------------------------------------


def _time_ns(value: object) -> int | None:
    """An ISO 8601 timestamp as Unix nanoseconds; no zone means UTC. None if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    # Integer arithmetic: a float of seconds would lose the microseconds at this magnitude.
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def provider_for(model: str) -> str | None:
    """The provider of a bare model name when the name alone says it, else None."""
    for prefix, provider in _PROVIDER_BY_PREFIX:
        if model.startswith(prefix):
            return provider
    return None


def _require(mapping: object, key: str, where: str, path: str) -> Any:
    if not isinstance(mapping, dict):
        raise Tau2FormatError(
            f"{path}: not a τ²-bench results file: {where or 'the top level'} is not an object"
        )
    if key not in mapping:
        dotted = f"{where}.{key}" if where else key
        raise Tau2FormatError(f"{path}: not a τ²-bench results file: missing field {dotted!r}")
    return mapping[key]


def _header(data: object, path: str) -> tuple[str, str, list[Any]]:
    """Workflow, agent model and simulations of a file, or Tau2FormatError."""
    info = _require(data, "info", "", path)
    simulations = _require(data, "simulations", "", path)
    if not isinstance(simulations, list):
        raise Tau2FormatError(
            f"{path}: field 'simulations' must be a list, got {type(simulations).__name__}"
        )

    agent_info = _require(info, "agent_info", "info", path)
    model = _require(agent_info, "llm", "info.agent_info", path)
    if not isinstance(model, str) or not model:
        raise Tau2FormatError(
            f"{path}: field 'info.agent_info.llm' must be a model name, got {model!r}"
        )

    environment = info.get("environment_info")
    domain = environment.get("domain_name") if isinstance(environment, dict) else None
    domain = domain or info.get("domain")
    if not isinstance(domain, str) or not domain:
        raise Tau2FormatError(
            f"{path}: not a τ²-bench results file: missing field "
            "'info.environment_info.domain_name' (or 'info.domain')"
        )
    return f"tau2-{domain}", model, simulations


def _outcome(simulation: dict[str, Any]) -> tuple[str | None, bool]:
    """(outcome, readable). A missing reward is no verdict; a malformed one is unreadable."""
    reward_info = simulation.get("reward_info")
    if reward_info is None:
        return None, True
    reward = reward_info.get("reward") if isinstance(reward_info, dict) else None
    if reward is None:
        return None, True
    if isinstance(reward, bool) or not isinstance(reward, int | float) or math.isnan(reward):
        return None, False
    return (attr.OUTCOME_CORRECT if reward == 1 else attr.OUTCOME_INCORRECT), True


def _calls(
    messages: list[Any], run_start_ns: int | None, where: str, found: Tau2File
) -> list[Tau2Call]:
    calls: list[Tau2Call] = []
    previous_ns = run_start_ns
    for index, message in enumerate(messages):
        here = f"{where}.messages[{index}]"
        if not isinstance(message, dict):
            found.skip("message is not an object", here)
            continue
        stamp_ns = _time_ns(message.get("timestamp"))
        start_ns = previous_ns
        if stamp_ns is not None:
            previous_ns = stamp_ns
        if message.get("role") != "assistant" or message.get("usage") is None:
            continue

        usage = message["usage"]
        input_tokens = _count(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
        output_tokens = _count(usage.get("completion_tokens")) if isinstance(usage, dict) else None
        cost = message.get("cost")
        if input_tokens is None or output_tokens is None:
            found.skip("assistant message without valid usage.prompt/completion_tokens", here)
            continue
        if stamp_ns is None:
            found.skip("assistant message without a valid 'timestamp'", here)
            continue
        if cost is not None and (
            isinstance(cost, bool)
            or not isinstance(cost, int | float)
            or not (math.isfinite(cost) and cost >= 0)
        ):
            found.skip("assistant message with an invalid 'cost'", here)
            continue

        tool_calls = message.get("tool_calls")
        start_ns = stamp_ns if start_ns is None else min(start_ns, stamp_ns)
        calls.append(
            Tau2Call(
                index=index,
                step_name=STEP_TOOL_CALL if tool_calls else STEP_REPLY,
                start_time_ns=start_ns,
                end_time_ns=stamp_ns,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=None if cost is None else float(cost),
            )
        )
    return calls


def read_file(path: str | Path) -> Tau2File:
    """Read one τ²-bench results file.

    Raises:
        Tau2FormatError: the file cannot be read or is not a τ²-bench results file.
    """
    name = str(path)
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except OSError as exc:
        raise Tau2FormatError(f"{name}: cannot read the file: {exc.strerror}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Tau2FormatError(f"{name}: not a τ²-bench results file: not JSON ({exc})") from exc

    workflow, model, simulations = _header(data, name)
    provider = provider_for(model)
    found = Tau2File(path=name)
    seen: set[str] = set()
    for position, simulation in enumerate(simulations):
        where = f"simulations[{position}]"
        if not isinstance(simulation, dict):
            found.skip("simulation is not an object", where)
            continue
        run_id = simulation.get("id")
        messages = simulation.get("messages")
        if not isinstance(run_id, str) or not run_id:
            found.skip("simulation without an 'id'", where)
            continue
        if not isinstance(messages, list):
            found.skip("simulation without a 'messages' list", where)
            continue
        if run_id in seen:
            found.skip("simulation id repeated in the same file", where)
            continue
        outcome, readable = _outcome(simulation)
        if not readable:
            found.skip("simulation with a non-numeric 'reward_info.reward'", where)
            continue
        seen.add(run_id)

        start_ns = _time_ns(simulation.get("start_time"))
        end_ns = _time_ns(simulation.get("end_time"))
        calls = _calls(messages, start_ns, where, found)
        # The run encloses its messages and calls, whatever its recorded bounds say.
        bounds = [
            ns
            for message in messages
            if isinstance(message, dict) and (ns := _time_ns(message.get("timestamp"))) is not None
        ]
        bounds += [call.start_time_ns for call in calls]
        bounds += [ns for ns in (start_ns, end_ns) if ns is not None]
        if not bounds:
            found.skip("simulation without 'start_time' or any message timestamp", where)
            continue
        found.runs.append(
            Tau2Run(
                run_id=run_id,
                workflow=workflow,
                model=model,
                provider=provider,
                outcome=outcome,
                start_time_ns=min(bounds),
                end_time_ns=max(bounds),
                calls=tuple(calls),
            )
        )
    return found


# --- replaying ----------------------------------------------------------------------------


def replay_run(ledger: Ledger, ids: DeterministicIdGenerator, run: Tau2Run) -> None:
    """Send one run through the SDK, with ids derived from the run id and message index."""
    ids.begin_run(run.run_id)
    with ledger.run(
        run.workflow,
        run_id=run.run_id,
        start_time_ns=run.start_time_ns,
        reingestion="carry-forward",
        new_trace=True,
    ) as sdk_run:
        for call in run.calls:
            ids.next_span(f"{call.index}:step")
            with sdk_run.step(call.step_name, attempt=1, start_time_ns=call.start_time_ns) as step:
                ids.next_span(f"{call.index}:llm")
                with step.llm(
                    model=run.model, provider=run.provider, start_time_ns=call.start_time_ns
                ) as llm:
                    llm.record_usage(
                        input_tokens=call.input_tokens,
                        output_tokens=call.output_tokens,
                        cost_usd=call.cost_usd,
                    )
                    llm.end(end_time_ns=call.end_time_ns)
                step.end(end_time_ns=call.end_time_ns)
        if run.outcome is not None:
            sdk_run.set_outcome(run.outcome)
        sdk_run.end(end_time_ns=run.end_time_ns)


@dataclass(slots=True)
class _Totals:
    runs: int = 0
    correct: int = 0
    unknown: int = 0
    calls: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0

    def add(self, run: Tau2Run) -> None:
        self.runs += 1
        self.correct += run.outcome == attr.OUTCOME_CORRECT
        self.unknown += run.outcome is None
        self.calls += len(run.calls)
        self.cost_usd += sum(call.cost_usd or 0.0 for call in run.calls)
        self.unpriced_calls += sum(call.cost_usd is None for call in run.calls)


def _print_summary(files: Sequence[Tau2File], totals: _Totals, seconds: float, out: TextIO) -> None:
    print(
        f"replayed {totals.runs} runs ({totals.correct} correct, "
        f"{totals.runs - totals.correct - totals.unknown} incorrect, {totals.unknown} without "
        f"a reward), {totals.calls} agent calls, reported agent cost "
        f"${totals.cost_usd:,.6f} in {seconds:.1f}s",
        file=out,
    )
    if totals.unpriced_calls:
        print(
            f"  calls without a reported cost: {totals.unpriced_calls} (the collector prices them)",
            file=out,
        )
    skipped = sum(sum(found.skipped.values()) for found in files)
    print(f"skipped {skipped} items", file=out)
    for found in files:
        for reason, count in sorted(found.skipped.items()):
            print(
                f"  {found.path}: {count} x {reason} (first at {found.first_seen[reason]})",
                file=out,
            )


def import_files(
    paths: Iterable[str],
    *,
    endpoint: str,
    exporter: SpanExporter | None = None,
    progress_every: int = PROGRESS_EVERY_RUNS,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Replay τ²-bench files into the collector at ``endpoint``; returns an exit code.

    Every file is read and checked before anything is sent, so a wrong path or a file of
    another format sends nothing (exit code 2). Items that cannot be replayed inside a valid
    file are skipped, counted and listed by reason in the summary. Exit code 1 when the
    spans could not all be handed to the collector, else 0.

    Args:
        paths: τ²-bench results files (the ``trajectories/*.json`` of a submission).
        endpoint: base URL of the collector (OTLP/HTTP).
        exporter: send spans here instead of over OTLP (tests inject an in-memory one).
        progress_every: print a progress line to ``err`` after this many runs.
        out: where the summary goes (default stdout).
        err: where errors and progress go (default stderr).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    started = time.monotonic()

    files: list[Tau2File] = []
    for path in paths:
        try:
            files.append(read_file(path))
        except Tau2FormatError as exc:
            print(f"agentledger import tau2: {exc}; nothing was sent", file=err)
            return 2
    if not files:
        print("agentledger import tau2: no file given; nothing was sent", file=err)
        return 2
    todo = sum(len(found.runs) for found in files)

    ids = DeterministicIdGenerator()
    try:
        ledger, delivered = open_ledger(SERVICE_NAME, endpoint=endpoint, exporter=exporter, ids=ids)
    except ValueError as exc:
        print(f"agentledger import tau2: {exc}; nothing was sent", file=err)
        return 2
    totals = _Totals()
    try:
        for found in files:
            for run in found.runs:
                replay_run(ledger, ids, run)
                totals.add(run)
                if progress_every > 0 and totals.runs % progress_every == 0:
                    print(f"tau2: {totals.runs}/{todo} runs sent ({found.path})", file=err)
        flushed = ledger.flush()
    finally:
        ledger.shutdown()

    _print_summary(files, totals, time.monotonic() - started, out)
    return delivery_code("agentledger import tau2", endpoint, flushed, delivered, out=out, err=err)
