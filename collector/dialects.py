"""The GenAI attribute dialects that the collector understands, and the run context of
foreign spans.

Instrumentation libraries name the same facts differently. Each tuple below lists, in order
of preference, the attribute names that carry one fact; the first one present wins. The
rules, with the library behind each name, are documented in ``docs/dialects.md``.

A *foreign* span is one without ``agentledger.span.kind``. Its run is its trace; its
workflow and step name come from the agent, workflow and task spans around it in the same
export request (see :class:`ContextRules`), and its tier from the model by the tier map
(see :func:`tier_for`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from agentledger.collector.otlp import AttrValue, SpanData
from agentledger.schemas import attributes as attr

logger = logging.getLogger(__name__)

# --- usage, model and provider ----------------------------------------------------------------
# OTel GenAI (current), then the pre-1.28 names (gen_ai.system, prompt/completion tokens),
# then OpenInference (llm.*). Traceloop's OpenLLMetry writes the current names plus its own
# gen_ai.usage.reasoning_tokens; pydantic-ai/Logfire writes current names plus
# gen_ai.usage.details.* (its output tokens include Gemini's thoughts, so they are a part).

PROVIDER: Final = (attr.PROVIDER_NAME, "gen_ai.system", "llm.provider", "llm.system")
REQUEST_MODEL: Final = (attr.REQUEST_MODEL, "llm.model_name", "langfuse.observation.model.name")
RESPONSE_MODEL: Final = (attr.RESPONSE_MODEL,)
INPUT_TOKENS: Final = (attr.INPUT_TOKENS, "gen_ai.usage.prompt_tokens", "llm.token_count.prompt")
OUTPUT_TOKENS: Final = (
    attr.OUTPUT_TOKENS,
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
CACHE_READ_TOKENS: Final = (
    attr.CACHE_READ_TOKENS,
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE_TOKENS: Final = (
    attr.CACHE_WRITE_TOKENS,
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
REASONING_TOKENS: Final = (
    attr.REASONING_TOKENS,
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
    "gen_ai.usage.details.thoughts_tokens",
)
TOOL_NAME: Final = (attr.TOOL_NAME, "tool.name")
#: Costs computed by other tools (OpenLIT, pydantic-ai/Logfire) from their own price tables:
#: used only when genai-prices has no price, never over it.
FOREIGN_COST_USD: Final = ("gen_ai.usage.cost", "operation.cost")

#: The Langfuse SDK's own usage attribute: a JSON object of disjoint usage types.
LANGFUSE_USAGE_DETAILS: Final = "langfuse.observation.usage_details"

CountReader = Callable[[Mapping[str, AttrValue], tuple[str, ...]], "int | None"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one span in our convention (input includes cache, output reasoning)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def carried(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None


def read_usage(attributes: Mapping[str, AttrValue], first_count: CountReader) -> Usage:
    """The usage of a span in whichever dialect it speaks.

    ``first_count`` reads the first present name of a tuple as a count (and rejects the span
    on a malformed one). The Langfuse SDK's usage details are read only when no other
    dialect carries input or output tokens.
    """
    usage = Usage(
        first_count(attributes, INPUT_TOKENS),
        first_count(attributes, OUTPUT_TOKENS),
        first_count(attributes, CACHE_READ_TOKENS),
        first_count(attributes, CACHE_WRITE_TOKENS),
        first_count(attributes, REASONING_TOKENS),
    )
    if usage.carried or LANGFUSE_USAGE_DETAILS not in attributes:
        return usage
    return langfuse_usage(attributes[LANGFUSE_USAGE_DETAILS]) or usage


def langfuse_usage(details: AttrValue) -> Usage | None:
    """Usage from Langfuse's usage details, or None when they cannot be read.

    Langfuse keeps usage types disjoint and sums them to ``total``: ``input`` excludes
    ``input_cache_read`` and ``input_audio``, ``output`` excludes ``output_reasoning``. So
    our input is the sum of the ``input*`` types and our output the sum of ``output*``.
    """
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except ValueError:
            return None
    if not isinstance(details, dict):
        return None
    counts: dict[str, int] = {}
    for key, value in details.items():
        if type(value) is int and value >= 0:
            counts[str(key)] = value
        elif type(value) is float and value.is_integer() and value >= 0:
            counts[str(key)] = int(value)
    inputs = [n for key, n in counts.items() if key == "input" or key.startswith("input_")]
    outputs = [n for key, n in counts.items() if key == "output" or key.startswith("output_")]
    if not inputs and not outputs:
        return None
    return Usage(
        input_tokens=sum(inputs) if inputs else None,
        output_tokens=sum(outputs) if outputs else None,
        cache_read_tokens=counts.get("input_cache_read"),
        cache_write_tokens=counts.get("input_cache_creation"),
        reasoning_tokens=counts.get("output_reasoning"),
    )


def foreign_cost(attributes: Mapping[str, AttrValue]) -> Decimal | None:
    """A cost that another tool computed, if one is present and readable."""
    for key in FOREIGN_COST_USD:
        value = attributes.get(key)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        try:
            amount = Decimal(str(value))
        except ArithmeticError:
            continue
        if amount.is_finite() and 0 <= amount < 1_000_000:
            return amount
    return None


# --- tier -------------------------------------------------------------------------------------


def tier_for(tier_map: Mapping[str, str], model: str, request_model: str = "") -> str:
    """The tier of a model by the tier map, or ``''``.

    An exact entry for the model wins, then one for the request model, then the longest
    entry that the model starts with followed by ``-`` (so ``gpt-4o`` covers the dated
    ``gpt-4o-2024-08-06`` but not ``gpt-4o-mini``, when ``gpt-4o-mini`` has its own entry).
    """
    if not tier_map:
        return ""
    for name in (model, request_model):
        if name and name in tier_map:
            return tier_map[name]
    best = ""
    for name in (model, request_model):
        for key in tier_map:
            if len(key) > len(best) and name.startswith(key + "-"):
                best = key
        if best:
            return tier_map[best]
    return ""


# --- run context ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContextRules:
    """Where a foreign span's workflow and step name come from.

    Attributes:
        workflow_attributes: Names whose value names the workflow, in order of preference.
            The outermost span of the trace that has one names the workflow of every foreign
            span of that trace in the request; without any, the root span's name does.
        agent_attributes: Names whose value names an agent (sub-agents become steps).
        step_attributes: Names whose value names a step, read on the span and its ancestors.
        agent_span_kinds: (attribute, value) pairs that mark an agent or task span whose
            span name stands in for an agent name the span does not carry.
        step_span_kinds: (attribute, value) pairs that mark a task span; its
            ``traceloop.entity.name`` (or span name) names the step of the spans below it.
    """

    workflow_attributes: tuple[str, ...] = (attr.WORKFLOW, "traceloop.workflow.name")
    agent_attributes: tuple[str, ...] = ("gen_ai.agent.name", "agent.name")
    step_attributes: tuple[str, ...] = (attr.STEP_NAME, "graph.node.id", "koog.node.name")
    agent_span_kinds: tuple[tuple[str, str], ...] = (
        ("openinference.span.kind", "AGENT"),
        ("traceloop.span.kind", "agent"),
        ("traceloop.span.kind", "workflow"),
        (attr.OPERATION_NAME, "invoke_agent"),
    )
    step_span_kinds: tuple[tuple[str, str], ...] = (("traceloop.span.kind", "task"),)

    @classmethod
    def from_file(cls, path: Path) -> ContextRules:
        """Rules read from a JSON object whose keys are field names; absent keys keep defaults.

        Raises:
            ValueError: the file cannot be read, or a field is not a list of the right form.
        """
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"dialect rules {str(path)!r} cannot be read: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"dialect rules {str(path)!r} must be a JSON object")  # noqa: TRY004
        fields: dict[str, tuple[object, ...]] = {}
        for key, value in data.items():
            if key not in cls.__dataclass_fields__:
                raise ValueError(
                    f"dialect rules {str(path)!r}: unknown field {key!r}; accepted: "
                    f"{sorted(cls.__dataclass_fields__)!r}"
                )
            pairs = key.endswith("_kinds")
            if not isinstance(value, list) or not all(
                (isinstance(v, list) and len(v) == 2 and all(isinstance(s, str) for s in v))
                if pairs
                else isinstance(v, str)
                for v in value
            ):
                shape = "[attribute, value] pairs" if pairs else "strings"
                raise ValueError(
                    f"dialect rules {str(path)!r}: field {key!r} must be a list of {shape}, "
                    f"got {value!r}"
                )
            fields[key] = tuple(tuple(v) if pairs else v for v in value)
        return cls(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SpanContext:
    """The workflow and step name derived for one foreign span."""

    workflow: str
    step_name: str


class ContextResolver:
    """Derives workflow and step names of foreign spans from the spans of their trace."""

    def __init__(self, rules: ContextRules | None = None) -> None:
        self._rules = rules or ContextRules()

    def resolve(self, spans: Iterable[SpanData]) -> dict[tuple[str, str], SpanContext]:
        """Context of each span, keyed by (trace id, span id); spans of one request only.

        A span whose parent is not in the request is treated as the root of its part of the
        trace. TODO: a trace split over several requests may get a different workflow name
        per part; resolving it needs a look-up of stored spans, left for the ingest rework
        of issue 8, since exporters batch a trace's spans together in practice.
        """
        by_id: dict[tuple[str, str], SpanData] = {}
        for span in spans:
            by_id[(span.trace_id, span.span_id)] = span

        # The workflow of a trace: the outermost span with a workflow attribute, else the
        # outermost (earliest) root's agent name, else its span name.
        chains = {key: self._chain(key, by_id) for key in by_id}
        workflows: dict[str, tuple[int, int, int, str]] = {}
        for key, chain in chains.items():
            span = by_id[key]
            depth = len(chain) - 1
            candidate = self._workflow_candidate(span, depth)
            if candidate is None:
                continue
            rank, name = candidate
            entry = (rank, depth, span.start_ns, name)
            if span.trace_id not in workflows or entry < workflows[span.trace_id]:
                workflows[span.trace_id] = entry

        contexts: dict[tuple[str, str], SpanContext] = {}
        for key, chain in chains.items():
            workflow_entry = workflows.get(key[0])
            workflow = workflow_entry[3] if workflow_entry else ""
            contexts[key] = SpanContext(workflow, self._step(chain, workflow))
        return contexts

    def _chain(
        self, key: tuple[str, str], by_id: Mapping[tuple[str, str], SpanData]
    ) -> list[SpanData]:
        """The span and its ancestors present in the request, innermost first."""
        chain = [by_id[key]]
        seen = {key}
        parent = (key[0], chain[0].parent_span_id)
        while parent[1] and parent in by_id and parent not in seen:
            seen.add(parent)
            chain.append(by_id[parent])
            parent = (key[0], by_id[parent].parent_span_id)
        return chain

    def _workflow_candidate(self, span: SpanData, depth: int) -> tuple[int, str] | None:
        a = span.attributes
        if name := _first(a, self._rules.workflow_attributes):
            return 0, name
        if depth == 0:
            return 1, _first(a, self._rules.agent_attributes) or span.name
        return None

    def _step(self, chain: list[SpanData], workflow: str) -> str:
        rules = self._rules
        for span in chain:
            a = span.attributes
            if name := _first(a, rules.step_attributes):
                return name
            if _is_kind(a, rules.step_span_kinds):
                return _text(a.get("traceloop.entity.name")) or span.name
            # A sub-agent (an agent other than the one naming the workflow) is a step.
            agent = _first(a, rules.agent_attributes)
            if not agent and _is_kind(a, rules.agent_span_kinds):
                agent = span.name
            if agent and agent != workflow and span is not chain[-1]:
                return agent
        return ""


def _is_kind(a: Mapping[str, AttrValue], kinds: tuple[tuple[str, str], ...]) -> bool:
    return any(_text(a.get(key)) == value for key, value in kinds)


def _first(a: Mapping[str, AttrValue], keys: tuple[str, ...]) -> str:
    for key in keys:
        if value := _text(a.get(key)):
            return value
    return ""


def _text(value: AttrValue) -> str:
    return value if isinstance(value, str) else ""
