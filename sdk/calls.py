"""Model and tool calls: the spans that carry tokens and cost."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util.types import AttributeValue

from agentledger import reingestion, validation
from agentledger.budget import BudgetExceeded
from agentledger.propagation import current_scope
from agentledger.schemas import attributes as attr
from agentledger.spans import Recorder, SpanHandle, put, start_span

if TYPE_CHECKING:
    from agentledger.run import Run
    from agentledger.step import Step

logger = logging.getLogger(__name__)


def _error_type(error: object) -> str | None:
    if isinstance(error, BaseException):
        return type(error).__qualname__
    if isinstance(error, type) and issubclass(error, BaseException):
        return error.__qualname__
    return validation.text(error, attr.ERROR_TYPE)


class _Call(SpanHandle):
    """A call inside a step, or directly inside a run."""

    def __init__(
        self,
        recorder: Recorder,
        run: Run,
        step: Step | None,
        name: str,
        attributes: dict[str, Any],
        start_time_ns: object,
        kind: trace.SpanKind,
    ) -> None:
        owner: Run | Step = step if step is not None else run
        # Nest under the current span when we are inside the owner (it may be an app span
        # opened in the step); otherwise under the owner itself, e.g. from another thread.
        parent = None if current_scope() is owner else owner.otel_context
        span = start_span(recorder, name, parent, attributes, start_time_ns, kind)
        base = otel_context.get_current() if parent is None else parent
        super().__init__(span, trace.set_span_in_context(span, base))
        self._run = run
        self._step = step

    @property
    def run(self) -> Run:
        """The run this call belongs to."""
        return self._run

    @property
    def step(self) -> Step | None:
        """The step attempt this call belongs to, or None for a call outside any step."""
        return self._step

    def record_error(self, error: str | BaseException | type[BaseException]) -> None:
        """Mark the call as failed; ``error`` is an error type name or an exception.

        Usage recorded on a failed call still counts.
        """
        try:
            error_type = _error_type(error)
            if self._set(attr.ERROR_TYPE, error_type):
                self._span.set_status(Status(StatusCode.ERROR, error_type))
        except Exception:  # broad: recording must never fail the agent
            logger.warning(
                "agentledger: could not record error on %r", self._describe(), exc_info=True
            )

    def _charge_budget(self) -> None:
        """Count what this call recorded in its run's budget, if the run has one.

        Raises:
            BudgetExceeded: the run went over a budget and its policy is ``"raise"``.
        """
        budget = self._run.budget
        if budget is not None:
            budget.charge(self, getattr(self._span, "attributes", None) or {})

    def _on_exception(self, exc: BaseException) -> None:
        existing = getattr(self._span, "attributes", None) or {}
        if attr.ERROR_TYPE not in existing:
            self._span.set_attribute(attr.ERROR_TYPE, type(exc).__qualname__)
        super()._on_exception(exc)


class LlmCall(_Call):
    """One model call: ``gen_ai.*`` attributes, usage, re-ingested tokens and reported cost.

    Made by :meth:`Step.llm` or :meth:`Run.llm`.
    """

    def __init__(
        self,
        recorder: Recorder,
        run: Run,
        step: Step | None,
        *,
        model: str | None,
        provider: str | None,
        request_model: str | None,
        response_model: str | None,
        operation: str,
        start_time_ns: int | None,
    ) -> None:
        request = validation.text(request_model, "request_model") or validation.text(model, "model")
        response = validation.text(response_model, "response_model")
        operation = validation.text(operation, "operation") or attr.OPERATION_CHAT
        if request is None and response is None:
            logger.warning("agentledger: llm call without a model; it cannot be priced")

        attributes: dict[str, Any] = dict(step.propagated if step else run.propagated)
        tier = _tier_for_call(recorder, step, response or request)
        put(attributes, attr.TIER, tier)
        attributes[attr.SPAN_KIND] = attr.KIND_LLM
        attributes[attr.OPERATION_NAME] = operation
        put(attributes, attr.PROVIDER_NAME, validation.text(provider, "provider"))
        put(attributes, attr.REQUEST_MODEL, request)
        put(attributes, attr.RESPONSE_MODEL, response)

        name = f"{operation} {response or request}" if (response or request) else operation
        super().__init__(
            recorder, run, step, name, attributes, start_time_ns, trace.SpanKind.CLIENT
        )
        self._baseline: reingestion.Baseline = None
        self._claimed = False
        self._provider = provider if isinstance(provider, str) and provider else None

    def set_response_model(self, model: str) -> None:
        """Record the model that answered, when it differs from or refines the request."""
        self._set(attr.RESPONSE_MODEL, validation.text(model, "response_model"))

    def record_response(
        self, response: object, *, provider: str | None = None, api_flavor: str | None = None
    ) -> None:
        """Record usage and response model from a provider's response, in our convention.

        Args:
            response: The response as decoded JSON or as the client's pydantic object:
                OpenAI Chat Completions or Responses, Anthropic Messages, Gemini
                generateContent, or the final chunk of a stream that carries the usage
                (for Anthropic streams, ``stream.get_final_message()``).
            provider: e.g. ``openai``, ``anthropic``, ``gcp.gemini``; defaults to the
                call's provider.
            api_flavor: ``chat`` or ``responses`` for OpenAI; guessed when omitted.

        A response without usage records nothing, so the usage stays unknown. Nothing
        here raises into the agent: problems are logged and the usage is dropped.
        """
        try:
            from agentledger.usage import extract_usage

            name = provider or self._provider
            if not name:
                logger.warning(
                    "agentledger: no provider for the response of %r; usage dropped",
                    self._describe(),
                )
                return
            usage = extract_usage(response, provider=name, api_flavor=api_flavor)
            if usage.model:
                self.set_response_model(usage.model)
            self.record_usage(
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=usage.cache_read_tokens,
                cache_write_tokens=usage.cache_write_tokens,
                reasoning_tokens=usage.reasoning_tokens,
            )
        except BudgetExceeded:  # the one exception the author asked for (on_budget="raise")
            raise
        except ValueError as exc:  # no readable usage (UsageNotFound, genai-prices' refusals)
            logger.warning(
                "agentledger: no usage read from the response of %r; usage left unknown: %s",
                self._describe(),
                exc,
            )
        except Exception:  # broad: recording must never fail the agent
            logger.warning(
                "agentledger: no usage read from the response of %r; usage left unknown",
                self._describe(),
                exc_info=True,
            )

    def record_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_write_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        reingested_tokens: int | None = None,
        predicted_tokens: int | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """Record the call's usage, as the OpenTelemetry GenAI conventions count it.

        Args:
            input_tokens: all prompt tokens, cached ones included.
            output_tokens: all generated tokens, reasoning included.
            cache_read_tokens: the part of the input read from the provider's cache.
            cache_write_tokens: the part of the input written to the provider's cache.
            reasoning_tokens: the part of the output spent on reasoning.
            reingested_tokens: the part of the input already processed earlier in this
                run; wins over the run's carry-forward estimate.
            predicted_tokens: a prior estimate of the call's tokens, to compare later.
            cost_usd: cost reported by the provider; wins over the collector's price.

        A later call replaces what an earlier one recorded. Invalid values are logged and
        dropped one by one.
        """
        try:
            self._record_usage(
                input_tokens,
                output_tokens,
                cache_read_tokens,
                cache_write_tokens,
                reasoning_tokens,
                reingested_tokens,
                predicted_tokens,
                cost_usd,
            )
        except BudgetExceeded:  # the one exception the author asked for (on_budget="raise")
            raise
        except Exception:  # broad: recording must never fail the agent
            logger.warning(
                "agentledger: could not record usage on %r; usage dropped",
                self._describe(),
                exc_info=True,
            )

    def _record_usage(
        self,
        input_tokens: object,
        output_tokens: object,
        cache_read_tokens: object,
        cache_write_tokens: object,
        reasoning_tokens: object,
        reingested_tokens: object,
        predicted_tokens: object,
        cost_usd: object,
    ) -> None:
        inputs = validation.count(input_tokens, attr.INPUT_TOKENS)
        outputs = validation.count(output_tokens, attr.OUTPUT_TOKENS)
        reingested = validation.count(reingested_tokens, attr.REINGESTED_TOKENS)
        if reingested is not None and inputs is not None and reingested > inputs:
            logger.warning(
                "agentledger: re-ingested tokens exceed the input; attribute dropped: "
                "%s=%r > %s=%r",
                attr.REINGESTED_TOKENS,
                reingested,
                attr.INPUT_TOKENS,
                inputs,
            )
            reingested = None

        carry = self._run.carry_forward
        if carry is not None:
            if not self._claimed:
                self._baseline = carry.baseline(self)
                self._claimed = True
            carry.record(self, inputs, outputs)
            if reingested is None and reingested_tokens is None:
                reingested = reingestion.estimate(self._baseline, inputs)

        usage: dict[str, AttributeValue] = {}
        put(usage, attr.INPUT_TOKENS, inputs)
        put(usage, attr.OUTPUT_TOKENS, outputs)
        put(
            usage,
            attr.CACHE_READ_TOKENS,
            validation.count(cache_read_tokens, attr.CACHE_READ_TOKENS),
        )
        put(
            usage,
            attr.CACHE_WRITE_TOKENS,
            validation.count(cache_write_tokens, attr.CACHE_WRITE_TOKENS),
        )
        put(usage, attr.REASONING_TOKENS, validation.count(reasoning_tokens, attr.REASONING_TOKENS))
        put(usage, attr.REINGESTED_TOKENS, reingested)
        put(usage, attr.PREDICTED_TOKENS, validation.count(predicted_tokens, attr.PREDICTED_TOKENS))
        put(usage, attr.COST_USD, validation.amount(cost_usd, attr.COST_USD))
        self._set_many(usage)
        self._charge_budget()


class ToolCall(_Call):
    """One tool execution; its optional cost counts in the run's spend, never in tokens.

    Made by :meth:`Step.tool` or :meth:`Run.tool`.
    """

    def __init__(
        self,
        recorder: Recorder,
        run: Run,
        step: Step | None,
        *,
        name: str,
        cost_usd: float | None,
        start_time_ns: int | None,
    ) -> None:
        tool_name = validation.text(name, attr.TOOL_NAME)
        attributes: dict[str, Any] = dict(step.propagated if step else run.propagated)
        attributes[attr.SPAN_KIND] = attr.KIND_TOOL
        attributes[attr.OPERATION_NAME] = attr.OPERATION_EXECUTE_TOOL
        put(attributes, attr.TOOL_NAME, tool_name)
        put(attributes, attr.COST_USD, validation.amount(cost_usd, attr.COST_USD))
        span_name = f"{attr.OPERATION_EXECUTE_TOOL} {tool_name or ''}".rstrip()
        super().__init__(
            recorder, run, step, span_name, attributes, start_time_ns, trace.SpanKind.INTERNAL
        )
        if cost_usd is not None:
            try:
                self._charge_budget()
            except BudgetExceeded:
                # Raised before the caller holds the handle: end the span so that it is sent.
                self.end()
                raise

    def record_cost(self, cost_usd: float) -> None:
        """Record what the tool call cost, for paid tools (a search API, a sandbox).

        Raises:
            BudgetExceeded: the cost took the run over its cost budget and the run's
                policy is ``"raise"``.
        """
        self._set(attr.COST_USD, validation.amount(cost_usd, attr.COST_USD))
        self._charge_budget()


def _tier_for_call(recorder: Recorder, step: Step | None, model: str | None) -> str | None:
    # The tier belongs to the attempt: a step without an explicit tier takes the one that
    # the tier map gives its first call's model; a call outside any step takes its own.
    mapped = recorder.tier_map.get(model) if model else None
    if step is None:
        return mapped
    return step.settle_tier(mapped)
