"""Steps: one attempt at one logical step of a run."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from agentledger import validation
from agentledger.calls import LlmCall, ToolCall
from agentledger.propagation import SCOPE_KEY, current_scope
from agentledger.schemas import attributes as attr
from agentledger.spans import Recorder, SpanHandle, put, start_span

if TYPE_CHECKING:
    from agentledger.run import Run

logger = logging.getLogger(__name__)

UNNAMED_STEP = "unnamed"


class Step(SpanHandle):
    """One attempt at one step instance; made by :meth:`Run.step` and :meth:`Run.retry`.

    All attempts of a step instance share its ``step_id``; ``attempt`` counts from 1. The
    tier belongs to the attempt, so a cascade is attempt 1 on ``small`` and attempt 2 on
    ``frontier``. Acceptance is recorded only when set: without it, an attempt counts as
    accepted unless a later attempt of the same instance exists.
    """

    def __init__(
        self,
        recorder: Recorder,
        run: Run,
        name: str,
        *,
        tier: str | None = None,
        attempt: int = 1,
        step_id: str | None = None,
        accepted: bool | None = None,
        complexity: str | None = None,
        sensitivity: str | None = None,
        context: str | None = None,
        start_time_ns: int | None = None,
    ) -> None:
        self._recorder = recorder
        self._run = run
        self._lock = threading.Lock()
        self._name = validation.text(name, attr.STEP_NAME) or UNNAMED_STEP
        self._explicit_tier = validation.text(tier, attr.TIER)
        self._tier = self._explicit_tier
        self._tier_settled = self._tier is not None
        self._attempt = validation.positive_count(attempt, attr.ATTEMPT) or 1
        self._complexity = validation.choice(
            complexity, attr.TASK_COMPLEXITY, attr.TASK_COMPLEXITIES
        )
        self._sensitivity = validation.choice(
            sensitivity, attr.TASK_SENSITIVITY, attr.TASK_SENSITIVITIES
        )
        self._task_context = validation.choice(context, attr.TASK_CONTEXT, attr.TASK_CONTEXTS)
        explicit_id = validation.text(step_id, attr.STEP_ID)

        attributes: dict[str, Any] = dict(run.propagated)
        attributes[attr.SPAN_KIND] = attr.KIND_STEP
        attributes[attr.STEP_NAME] = self._name
        put(attributes, attr.STEP_ID, explicit_id)
        attributes[attr.ATTEMPT] = self._attempt
        put(attributes, attr.TIER, self._tier)
        put(attributes, attr.TASK_COMPLEXITY, self._complexity)
        put(attributes, attr.TASK_SENSITIVITY, self._sensitivity)
        put(attributes, attr.TASK_CONTEXT, self._task_context)
        put(attributes, attr.ATTEMPT_ACCEPTED, validation.flag(accepted, attr.ATTEMPT_ACCEPTED))

        # Nest under the current span when we are inside this run (an app span may be open
        # there); otherwise under the run itself, e.g. from a worker thread.
        parent = None if _in_run(run) else run.otel_context
        span = start_span(recorder, f"step {self._name}", parent, attributes, start_time_ns)
        base = otel_context.get_current() if parent is None else parent
        self._step_id = explicit_id or _default_step_id(span)
        if explicit_id is None:
            span.set_attribute(attr.STEP_ID, self._step_id)
        self._propagated = self._build_propagated()
        with_span = trace.set_span_in_context(span, base)
        super().__init__(span, otel_context.set_value(SCOPE_KEY, self, with_span))

    # --- identity -------------------------------------------------------------------------

    @property
    def run(self) -> Run:
        """The run this attempt belongs to."""
        return self._run

    @property
    def name(self) -> str:
        """The step's name (``agentledger.step.name``)."""
        return self._name

    @property
    def step_id(self) -> str:
        """The id of the step instance, shared by all its attempts."""
        return self._step_id

    @property
    def attempt(self) -> int:
        """The attempt number, from 1."""
        return self._attempt

    @property
    def tier(self) -> str | None:
        """The attempt's tier: explicit, else from the tier map of its first call's model."""
        return self._tier

    @property
    def explicit_tier(self) -> str | None:
        """The tier given when the attempt started, if any."""
        return self._explicit_tier

    @property
    def complexity(self) -> str | None:
        """The routing axis ``agentledger.task.complexity``, if set."""
        return self._complexity

    @property
    def sensitivity(self) -> str | None:
        """The routing axis ``agentledger.task.sensitivity``, if set."""
        return self._sensitivity

    @property
    def task_context(self) -> str | None:
        """The routing axis ``agentledger.task.context``, if set."""
        return self._task_context

    @property
    def propagated(self) -> Mapping[str, AttributeValue]:
        """Run and step attributes copied onto every span started inside this attempt."""
        return self._propagated

    # --- calls ----------------------------------------------------------------------------

    def llm(
        self,
        model: str | None = None,
        provider: str | None = None,
        *,
        request_model: str | None = None,
        response_model: str | None = None,
        operation: str = attr.OPERATION_CHAT,
        start_time_ns: int | None = None,
    ) -> LlmCall:
        """Start a model call in this attempt; use it as a context manager.

        ``model`` is the requested model (``request_model`` overrides it);
        ``response_model`` is the model that answered, when known.
        """
        return LlmCall(
            self._recorder,
            self._run,
            self,
            model=model,
            provider=provider,
            request_model=request_model,
            response_model=response_model,
            operation=operation,
            start_time_ns=start_time_ns,
        )

    def tool(
        self, name: str, *, cost_usd: float | None = None, start_time_ns: int | None = None
    ) -> ToolCall:
        """Start a tool call in this attempt; use it as a context manager."""
        return ToolCall(
            self._recorder,
            self._run,
            self,
            name=name,
            cost_usd=cost_usd,
            start_time_ns=start_time_ns,
        )

    # --- verdict on the attempt -----------------------------------------------------------

    def accept(self) -> None:
        """Record that this attempt's output was used (call before the attempt ends)."""
        self._set(attr.ATTEMPT_ACCEPTED, True)

    def reject(self) -> None:
        """Record that this attempt's output was thrown away (call before it ends).

        An attempt followed by a retry counts as not accepted even without this call.
        """
        self._set(attr.ATTEMPT_ACCEPTED, False)

    # --- for calls ------------------------------------------------------------------------

    def settle_tier(self, mapped: str | None) -> str | None:
        """The tier of a call in this attempt whose model the tier map gives as ``mapped``.

        Without an explicit tier, the attempt takes the tier of its first call's model.
        """
        with self._lock:
            if not self._tier_settled:
                self._tier_settled = True
                if mapped is not None and not self._ended:
                    self._tier = mapped
                    self._span.set_attribute(attr.TIER, mapped)
                    self._propagated = self._build_propagated()
            return self._tier if self._tier is not None else mapped

    def _build_propagated(self) -> dict[str, AttributeValue]:
        propagated: dict[str, AttributeValue] = dict(self._run.propagated)
        propagated[attr.STEP_NAME] = self._name
        propagated[attr.STEP_ID] = self._step_id
        propagated[attr.ATTEMPT] = self._attempt
        put(propagated, attr.TIER, self._tier)
        put(propagated, attr.TASK_COMPLEXITY, self._complexity)
        put(propagated, attr.TASK_SENSITIVITY, self._sensitivity)
        put(propagated, attr.TASK_CONTEXT, self._task_context)
        return propagated


def _in_run(run: Run) -> bool:
    scope = current_scope()
    return scope is not None and scope.run is run


def _default_step_id(span: trace.Span) -> str:
    # The first attempt's span id: unique within a trace, and deterministic whenever the
    # span ids are (replays with a deterministic id generator store the same step ids).
    span_context = span.get_span_context()
    if span_context.is_valid:
        return format(span_context.span_id, "016x")
    return uuid.uuid4().hex
