"""``agentledger demo``: a seeded, realistic mix of agent runs, sent through the real SDK.

Three workflows, each shaped after a common agent design:

- ``support-ticket``, a five-step pipeline: classify on a small model (escalated to a
  frontier model when unsure: a cascade), retrieve from a knowledge base (a tool), draft on a
  mid model, check on a small model (a failed check retries the draft, carrying the rejected
  draft along), reply on a frontier model (a quarter of the runs try a mid model instead, an
  A/B test of the routing table). Each step re-reads what earlier steps read or wrote, and
  records that count explicitly. Verdicts come later, from human review, as outcome spans;
  recent runs are still waiting for theirs.
- ``procurement``, a chat-loop agent whose context grows with every call (re-ingestion by the
  SDK's carry-forward estimate): intake, plan, a loop of supplier searches (a paid tool) and
  quote evaluations with prompt-cache reads, a compliance check with a cascade, negotiation and
  a summary. Runs carry a token budget; a few run away and break it, and a few crash before
  their run span is sent.
- ``contract-digest``: compress-then-analyse (a small model extracts, a frontier model reads a
  short input) against sending the whole contract to the frontier model; runs carry a cost
  budget that the long-context path sometimes breaks. Some extractions run on a self-hosted
  model that no public price list knows (an unpriced call).

Every model name is one that ``genai-prices`` prices, except the self-hosted one. Run ids,
span ids and times derive from the seed and the anchor time (by default the start of the
current UTC day), so sending the demo twice stores nothing new.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from genai_prices import Usage, calc_price

from agentledger.importers.delivery import delivery_code, open_ledger
from agentledger.importers.ids import DeterministicIdGenerator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from agentledger import Ledger, Run, Step

__all__ = ["run_demo"]

SERVICE_NAME = "agentledger-demo"
DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
SPREAD_DAYS = 14

SUPPORT = "support-ticket"
PROCUREMENT = "procurement"
DIGEST = "contract-digest"
WORKFLOW_WEIGHTS = {SUPPORT: 0.55, PROCUREMENT: 0.25, DIGEST: 0.20}

SMALL, MID, FRONTIER = "small", "mid", "frontier"
GPT_4O_MINI = "gpt-4o-mini"
HAIKU = "claude-haiku-4-5"
GPT_41_MINI = "gpt-4.1-mini"
GPT_41 = "gpt-4.1"
SONNET = "claude-sonnet-4-5"
SELF_HOSTED = "acme-extractor-7b"  # unknown to every price list: an unpriced call

PROVIDERS = {
    GPT_4O_MINI: "openai",
    GPT_41_MINI: "openai",
    GPT_41: "openai",
    HAIKU: "anthropic",
    SONNET: "anthropic",
    SELF_HOSTED: None,
}
# Output speed in tokens per second, for plausible call durations.
TOKENS_PER_SECOND = {
    GPT_4O_MINI: 110,
    HAIKU: 120,
    SELF_HOSTED: 140,
    GPT_41_MINI: 90,
    GPT_41: 60,
    SONNET: 55,
}

PROCUREMENT_BUDGET_TOKENS = 250_000
DIGEST_BUDGET_USD = 0.20
SUPPLIER_API_COST_USD = 0.004

# Routing axes (complexity, sensitivity, context length) of each kind of step.
Axes = tuple[str, str, str]
LOW_INTERNAL_SHORT: Axes = ("low", "internal", "short")
LOW_INTERNAL_MEDIUM: Axes = ("low", "internal", "medium")
MEDIUM_INTERNAL_MEDIUM: Axes = ("medium", "internal", "medium")
HIGH_EXTERNAL_MEDIUM: Axes = ("high", "external", "medium")
HIGH_INTERNAL_MEDIUM: Axes = ("high", "internal", "medium")


def _context_axis(tokens: int) -> str:
    return "short" if tokens < 4_000 else "medium" if tokens < 16_000 else "long"


@dataclass(slots=True)
class DemoSummary:
    """What the demo sent, for its closing lines."""

    runs: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    llm_calls: int = 0
    tool_calls: int = 0
    retried_steps: int = 0
    cascades: int = 0
    over_budget: int = 0
    crashed: int = 0
    late_verdicts: int = 0


class _Session:
    """One run being played: its random source, simulated clock and token tally."""

    def __init__(
        self,
        rng: random.Random,
        run: Run,
        ids: DeterministicIdGenerator,
        start_ns: int,
        summary: DemoSummary,
    ) -> None:
        self.rng = rng
        self.run = run
        self.now_ns = start_ns
        self.tokens = 0
        self.cost_usd = 0.0
        self._ids = ids
        self._spans = 0
        self._summary = summary

    def _label(self, kind: str) -> None:
        self._spans += 1
        self._ids.next_span(f"{self._spans}:{kind}")

    def _pause(self, low_seconds: float, high_seconds: float) -> None:
        self.now_ns += int(self.rng.uniform(low_seconds, high_seconds) * 1e9)

    @contextmanager
    def step(
        self, name: str, tier: str | None, axes: Axes, *, retry_of: Step | None = None
    ) -> Iterator[Step]:
        """An attempt at a step that ends at the simulated time its calls reached."""
        self._pause(0.02, 0.3)
        self._label("step")
        complexity, sensitivity, context = axes
        if retry_of is None:
            step = self.run.step(
                name,
                tier,
                complexity=complexity,
                sensitivity=sensitivity,
                context=context,
                start_time_ns=self.now_ns,
            )
        else:
            # Acceptance stays implicit: this attempt counts as accepted unless it is
            # retried in turn.
            self._summary.retried_steps += 1
            self._summary.cascades += tier is not None and tier != retry_of.tier
            step = self.run.retry(retry_of, tier, context=context, start_time_ns=self.now_ns)
        with step:
            yield step
            step.end(end_time_ns=self.now_ns)

    def llm(
        self,
        step: Step,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        reingested_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        predicted_tokens: int | None = None,
        error: str | None = None,
    ) -> None:
        """A model call of plausible duration, tallied against the run's budget."""
        self._pause(0.01, 0.05)
        self._label("llm")
        started = self.now_ns
        seconds = 0.25 + input_tokens / 40_000 + output_tokens / TOKENS_PER_SECOND[model]
        with step.llm(model, PROVIDERS[model], start_time_ns=started) as call:
            call.record_usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read_tokens,
                cache_write_tokens=cache_write_tokens,
                reingested_tokens=reingested_tokens,
                predicted_tokens=predicted_tokens,
            )
            if error is not None:
                call.record_error(error)
            self.now_ns = started + int(seconds * self.rng.uniform(0.8, 1.4) * 1e9)
            call.end(end_time_ns=self.now_ns)
        self._summary.llm_calls += 1
        self.tokens += input_tokens + output_tokens
        self.cost_usd += _price_usd(
            model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens
        )

    def tool(self, step: Step, name: str, cost_usd: float | None = None) -> None:
        """A tool call of 0.1 to 1.2 seconds."""
        self._label("tool")
        with step.tool(name, cost_usd=cost_usd, start_time_ns=self.now_ns) as call:
            self._pause(0.1, 1.2)
            call.end(end_time_ns=self.now_ns)
        self._summary.tool_calls += 1
        self.cost_usd += cost_usd or 0.0

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability


def _price_usd(
    model: str, inputs: int, outputs: int, cache_read: int | None, cache_write: int | None
) -> float:
    """The call's list price, only to count the runs over their cost budget (0 if unknown)."""
    try:
        usage = Usage(
            input_tokens=inputs,
            output_tokens=outputs,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        )
        return float(calc_price(usage, model_ref=model, provider_id=PROVIDERS[model]).total_price)
    except LookupError:  # the self-hosted model: no public price
        return 0.0


# --- the three agents -----------------------------------------------------------------------


def _support_ticket(s: _Session) -> str:
    """Five steps; returns the verdict that human review will give."""
    ticket = s.rng.randint(250, 1_400)
    system = 450

    with s.step("classify", SMALL, LOW_INTERNAL_SHORT) as classify:
        label = s.rng.randint(15, 60)
        s.llm(
            classify,
            GPT_4O_MINI,
            input_tokens=system + ticket,
            output_tokens=label,
            reingested_tokens=0,
        )
        unsure = s.chance(0.16)
        if unsure:
            classify.reject()
    if unsure:  # the cascade: the frontier model decides instead
        with s.step("classify", FRONTIER, LOW_INTERNAL_SHORT, retry_of=classify) as escalated:
            s.llm(
                escalated,
                GPT_41,
                input_tokens=system + ticket + label,
                output_tokens=label,
                reingested_tokens=system + ticket + label,
            )

    with s.step("retrieve", None, LOW_INTERNAL_MEDIUM) as retrieve:
        s.tool(retrieve, "kb_search")
    documents = s.rng.randint(1_500, 6_000)

    draft_input = 700 + ticket + label + documents
    draft_output = s.rng.randint(250, 700)
    draft_axes = ("medium", "internal", _context_axis(draft_input))
    with s.step("draft", MID, draft_axes) as draft:
        s.llm(
            draft,
            GPT_41_MINI,
            input_tokens=draft_input,
            output_tokens=draft_output,
            reingested_tokens=ticket + label,
        )
    failures = 0
    passed = False
    while True:
        check_output = s.rng.randint(30, 90)
        with s.step("check", SMALL, LOW_INTERNAL_MEDIUM) as check:
            s.llm(
                check,
                HAIKU,
                input_tokens=300 + ticket + draft_output,
                output_tokens=check_output,
                reingested_tokens=ticket + draft_output,
            )
        passed = not s.chance(0.18 if failures == 0 else 0.3)
        if passed or failures == 2:
            break
        failures += 1
        # The retry carries the rejected draft and the checker's notes along.
        previous_input = draft_input
        draft_input += draft_output + check_output
        draft_output = s.rng.randint(250, 700)
        with s.step("draft", MID, draft_axes, retry_of=draft) as draft:
            s.llm(
                draft,
                GPT_41_MINI,
                input_tokens=draft_input,
                output_tokens=draft_output,
                reingested_tokens=previous_input + check_output,
            )

    on_mid = s.chance(0.25)  # the A/B test: can a mid model write the customer's reply?
    model = GPT_41_MINI if on_mid else (SONNET if s.chance(0.5) else GPT_41)
    system = 1_200  # style guide and policies, the same for every ticket
    reply_input = system + ticket + documents + draft_output + check_output
    # Every ticket's prompt starts with the same system prompt, so the provider's cache has
    # it: all of it with Anthropic's explicit caching, whole 1,024-token blocks with OpenAI's.
    cache_read = system if PROVIDERS[model] == "anthropic" else system // 1_024 * 1_024
    with s.step("reply", MID if on_mid else FRONTIER, HIGH_EXTERNAL_MEDIUM) as reply:
        s.llm(
            reply,
            model,
            input_tokens=reply_input,
            output_tokens=s.rng.randint(180, 500),
            reingested_tokens=reply_input - system,
            cache_read_tokens=cache_read,
        )

    p_correct = 0.86 - (0.12 if on_mid else 0.0) - 0.1 * failures - (0.08 if not passed else 0)
    p_correct += 0.04 if unsure else 0.0
    return "correct" if s.chance(p_correct) else "incorrect"


def _procurement(s: _Session) -> str:
    """A chat loop; returns its verdict, or raises _Crash when the agent dies mid-run."""
    runaway = s.chance(0.06)
    context = 3_200 + s.rng.randint(300, 1_200)

    # Prompt tokens that each model has in its provider's cache: every turn's prompt
    # starts with the previous one, so the last prompt on the same model is a cached prefix.
    cached_prefix: dict[str, int] = {}

    def turn(
        step: Step,
        model: str,
        output: int,
        *,
        error: str | None = None,
        predicted: int | None = None,
    ) -> None:
        nonlocal context
        previous = cached_prefix.get(model, 0)
        cache_write = None
        if PROVIDERS[model] == "anthropic":
            # Explicit caching with a breakpoint at the end: read the known prefix, write the rest.
            cache_read: int | None = previous or None
            cache_write = context - previous
        else:
            # Automatic caching: whole 1,024-token blocks, and not on every request.
            hit = previous >= 1_024 and s.chance(0.8)
            cache_read = previous // 1_024 * 1_024 if hit else None
        cached_prefix[model] = context
        s.llm(
            step,
            model,
            input_tokens=context,
            output_tokens=output,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            predicted_tokens=predicted,
            error=error,
        )
        context += output

    with s.step("intake", SMALL, LOW_INTERNAL_SHORT) as intake:
        turn(intake, GPT_4O_MINI, s.rng.randint(120, 250))
    with s.step("plan", FRONTIER, HIGH_INTERNAL_MEDIUM) as plan:
        turn(plan, GPT_41, s.rng.randint(400, 900))

    rounds = s.rng.randint(15, 22) if runaway else s.rng.randint(4, 9)
    for _ in range(rounds):
        with s.step("search_suppliers", None, LOW_INTERNAL_SHORT) as search:
            s.tool(search, "supplier_api", cost_usd=SUPPLIER_API_COST_USD)
        context += s.rng.randint(900, 2_200)
        axes = ("medium", "internal", _context_axis(context))
        # The agent's own guess of the call's tokens: right on average, often far off.
        guess = int(context * math.exp(s.rng.gauss(0.0, 0.5)))
        timed_out = s.chance(0.03)
        with s.step("evaluate_quote", MID, axes) as evaluate:
            turn(
                evaluate,
                GPT_41_MINI,
                0 if timed_out else s.rng.randint(150, 400),
                predicted=guess,
                error="timeout" if timed_out else None,
            )
        if timed_out:
            with s.step("evaluate_quote", MID, axes, retry_of=evaluate) as again:
                turn(again, GPT_41_MINI, s.rng.randint(150, 400), predicted=guess)
        if s.chance(0.003):
            raise _Crash

    long_axes = ("low", "internal", _context_axis(context))
    with s.step("compliance_check", SMALL, long_axes) as compliance:
        turn(compliance, HAIKU, s.rng.randint(80, 200))
        unsure = s.chance(0.12)
        if unsure:
            compliance.reject()
    if unsure:
        with s.step("compliance_check", FRONTIER, long_axes, retry_of=compliance) as escalated:
            turn(escalated, SONNET, s.rng.randint(150, 300))
    with s.step("negotiate", FRONTIER, ("high", "external", _context_axis(context))) as talk:
        turn(talk, SONNET, s.rng.randint(500, 1_200))
    with s.step("approval_summary", MID, ("medium", "external", _context_axis(context))) as done:
        turn(done, GPT_41_MINI, s.rng.randint(300, 600))

    p_correct = 0.35 if runaway else 0.8 - 0.03 * max(0, rounds - 6) + (0.05 if unsure else 0)
    return "correct" if s.chance(p_correct) else "incorrect"


def _contract_digest(s: _Session) -> str:
    """Compress-then-analyse, or the whole contract on the frontier model."""
    contract = s.rng.randint(18_000, 95_000)
    with s.step("fetch_contract", None, LOW_INTERNAL_SHORT) as fetch:
        s.tool(fetch, "document_store")

    direct = s.chance(0.25)
    if direct:
        with s.step("analyse", FRONTIER, ("high", "external", "long")) as analyse:
            s.llm(
                analyse,
                SONNET,
                input_tokens=1_500 + contract,
                output_tokens=s.rng.randint(600, 1_400),
                reingested_tokens=0,
            )
        p_correct = 0.84
    else:
        extractor = SELF_HOSTED if s.chance(0.15) else GPT_4O_MINI
        passages = s.rng.randint(1_500, 4_000)
        with s.step("extract", SMALL, ("low", "internal", "long")) as extract:
            s.llm(
                extract,
                extractor,
                input_tokens=600 + contract,
                output_tokens=passages,
                reingested_tokens=0,
            )
        analysis_input = 1_500 + passages
        with s.step("analyse", FRONTIER, ("high", "external", _context_axis(analysis_input))) as a:
            s.llm(
                a,
                SONNET,
                input_tokens=analysis_input,
                output_tokens=s.rng.randint(600, 1_400),
                reingested_tokens=passages,
            )
        p_correct = 0.8
    return "correct" if s.chance(p_correct) else "incorrect"


class _Crash(Exception):
    """The simulated agent process died: its run span is never sent."""


_AGENTS: dict[str, Callable[[_Session], str]] = {
    SUPPORT: _support_ticket,
    PROCUREMENT: _procurement,
    DIGEST: _contract_digest,
}


# --- driving --------------------------------------------------------------------------------


def _start_times(rng: random.Random, runs: int, anchor_ns: int) -> list[int]:
    """Run starts over the 14 days before ``anchor_ns``, busier in office hours, in order."""
    starts = []
    for _ in range(runs):
        day = rng.randrange(SPREAD_DAYS)
        hour = rng.choices(range(24), weights=[1] * 7 + [4] * 11 + [2] * 6)[0]
        offset = day * DAY_NS + hour * HOUR_NS + rng.randrange(HOUR_NS)
        starts.append(anchor_ns - SPREAD_DAYS * DAY_NS + offset)
    # Runs close to the anchor may not end before it; keep them a little earlier.
    return sorted(min(start, anchor_ns - HOUR_NS) for start in starts)


def play_run(
    ledger: Ledger,
    ids: DeterministicIdGenerator,
    rng: random.Random,
    *,
    run_id: str,
    workflow: str,
    start_ns: int,
    anchor_ns: int,
    summary: DemoSummary,
) -> None:
    """Play one run of ``workflow`` through the SDK with deterministic ids and times."""
    ids.begin_run(run_id)
    budget_tokens = PROCUREMENT_BUDGET_TOKENS if workflow == PROCUREMENT else None
    budget_usd = DIGEST_BUDGET_USD if workflow == DIGEST else None
    run = ledger.run(
        workflow,
        run_id=run_id,
        budget_tokens=budget_tokens,
        budget_usd=budget_usd,
        reingestion="carry-forward" if workflow == PROCUREMENT else "explicit",
        start_time_ns=start_ns,
        new_trace=True,
    )
    session = _Session(rng, run, ids, start_ns, summary)
    summary.runs[workflow] += 1
    # No ``with run``: leaving the block on _Crash would end and send the run span.
    try:
        outcome = _AGENTS[workflow](session)
    except _Crash:
        # The run span stays open and is never exported, like that of a killed process;
        # its ended steps and calls still carry the run id and workflow.
        summary.crashed += 1
        return
    if workflow != SUPPORT:
        run.set_outcome(outcome)
    run.end(end_time_ns=session.now_ns)

    if (budget_tokens is not None and session.tokens > budget_tokens) or (
        budget_usd is not None and session.cost_usd > budget_usd
    ):
        summary.over_budget += 1
    if workflow == SUPPORT:
        # Human review lands between 2 and 48 hours later; recent runs are still waiting.
        reviewed_at = session.now_ns + int(rng.uniform(2, 48) * HOUR_NS)
        if reviewed_at > anchor_ns:
            summary.outcomes["pending"] += 1
            return
        ids.next_span("review")
        ledger.record_outcome(run_id, outcome, source="human-review", timestamp_ns=reviewed_at)
        summary.late_verdicts += 1
    summary.outcomes[outcome] += 1


def _print_summary(summary: DemoSummary, seconds: float, out: TextIO) -> None:
    mix = ", ".join(f"{count} {name}" for name, count in sorted(summary.runs.items()))
    print(f"demo: {sum(summary.runs.values())} runs ({mix}) in {seconds:.1f}s", file=out)
    print(
        f"  {summary.llm_calls} llm calls, {summary.tool_calls} tool calls, "
        f"{summary.retried_steps} retried attempts ({summary.cascades} cascades)",
        file=out,
    )
    print(
        f"  outcomes: {summary.outcomes['correct']} correct, {summary.outcomes['incorrect']} "
        f"incorrect, {summary.outcomes['pending']} awaiting review; "
        f"{summary.late_verdicts} verdicts sent late as outcome spans",
        file=out,
    )
    print(
        f"  {summary.over_budget} runs over budget, {summary.crashed} crashed runs (no run span)",
        file=out,
    )


def run_demo(
    *,
    endpoint: str,
    seed: int = 7,
    runs: int = 400,
    exporter: SpanExporter | None = None,
    anchor_ns: int | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Send ``runs`` seeded agent runs to the collector at ``endpoint``; returns an exit code.

    Args:
        endpoint: base URL of the collector (OTLP/HTTP).
        seed: the same seed (and anchor) gives the same runs, ids and times.
        runs: how many runs to send.
        exporter: send spans here instead of over OTLP (tests inject an in-memory one).
        anchor_ns: runs fall in the 14 days before this time (default: the start of the
            current UTC day, so that sending the demo twice in a day sends identical spans).
        out: where the summary goes (default stdout).
        err: where errors go (default stderr).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 0:
        print(f"agentledger demo: runs must be an integer >= 0, got {runs!r}", file=err)
        return 2
    if anchor_ns is None:
        anchor_ns = time.time_ns() // DAY_NS * DAY_NS
    started = time.monotonic()

    ids = DeterministicIdGenerator()
    try:
        ledger, delivered = open_ledger(SERVICE_NAME, endpoint=endpoint, exporter=exporter, ids=ids)
    except ValueError as exc:
        print(f"agentledger demo: {exc}; nothing was sent", file=err)
        return 2
    rng = random.Random(seed)
    summary = DemoSummary()
    workflows = list(WORKFLOW_WEIGHTS)
    try:
        for index, start_ns in enumerate(_start_times(rng, runs, anchor_ns)):
            workflow = rng.choices(workflows, weights=list(WORKFLOW_WEIGHTS.values()))[0]
            play_run(
                ledger,
                ids,
                rng,
                run_id=f"demo-{seed}-{index:05d}",
                workflow=workflow,
                start_ns=start_ns,
                anchor_ns=anchor_ns,
                summary=summary,
            )
        flushed = ledger.flush()
    finally:
        ledger.shutdown()

    _print_summary(summary, time.monotonic() - started, out)
    return delivery_code("agentledger demo", endpoint, flushed, delivered, out=out, err=err)
