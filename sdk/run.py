"""Runs: one execution of an agent workflow, from the task to its outcome."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from agentledger import validation
from agentledger.budget import BudgetPolicy, RunBudget, check_policy
from agentledger.calls import LlmCall, ToolCall
from agentledger.propagation import SCOPE_KEY, current_scope
from agentledger.reingestion import CARRY_FORWARD, MODES, CarryForward, Mode
from agentledger.schemas import attributes as attr
from agentledger.spans import Recorder, SpanHandle, put, start_span
from agentledger.step import UNNAMED_STEP, Step

logger = logging.getLogger(__name__)

UNNAMED_WORKFLOW = "unnamed"
OUTCOME_SOURCE_SDK = "sdk"


class Run(SpanHandle):
    """One agent run; made by :meth:`Ledger.run <agentledger.Ledger.run>`.

    The run id defaults to the trace id (32 lower-case hex digits) when the run starts a
    trace. A run started inside another span shares that span's trace, so it gets a fresh
    random id instead, and inside another SDK run it records that run as its parent.
    """

    def __init__(
        self,
        recorder: Recorder,
        workflow: str,
        *,
        run_id: str | None = None,
        parent_run_id: str | None = None,
        budget_tokens: int | None = None,
        budget_usd: float | None = None,
        conversation_id: str | None = None,
        agent_name: str | None = None,
        reingestion: Mode = "explicit",
        start_time_ns: int | None = None,
        new_trace: bool = False,
        on_budget: BudgetPolicy = "warn",
    ) -> None:
        self._recorder = recorder
        self._workflow = validation.text(workflow, attr.WORKFLOW) or UNNAMED_WORKFLOW
        mode = validation.choice(reingestion, "reingestion", MODES)
        self._carry_forward = CarryForward() if mode == CARRY_FORWARD else None
        # A new trace starts from an empty context: no parent span and no enclosing run.
        detached = validation.flag(new_trace, "new_trace") is True
        parent_context = otel_context.Context() if detached else otel_context.get_current()
        enclosing = current_scope(parent_context)
        explicit_id = validation.text(run_id, attr.RUN_ID)
        parent_id = validation.text(parent_run_id, attr.RUN_PARENT_ID)
        if parent_id is None and enclosing is not None:
            parent_id = enclosing.run.run_id
        agent = validation.text(agent_name, attr.AGENT_NAME) or self._workflow

        attributes: dict[str, Any] = {
            attr.SPAN_KIND: attr.KIND_RUN,
            attr.WORKFLOW: self._workflow,
            attr.OPERATION_NAME: attr.OPERATION_INVOKE_AGENT,
            attr.AGENT_NAME: agent,
        }
        put(attributes, attr.RUN_ID, explicit_id)
        put(attributes, attr.RUN_PARENT_ID, parent_id)
        put(
            attributes, attr.CONVERSATION_ID, validation.text(conversation_id, attr.CONVERSATION_ID)
        )
        checked_tokens = validation.count(budget_tokens, attr.BUDGET_TOKENS)
        checked_usd = validation.amount(budget_usd, attr.BUDGET_USD)
        put(attributes, attr.BUDGET_TOKENS, checked_tokens)
        put(attributes, attr.BUDGET_USD, checked_usd)

        starts_trace = not trace.get_current_span(parent_context).get_span_context().is_valid
        span = start_span(
            recorder,
            f"{attr.OPERATION_INVOKE_AGENT} {agent}",
            parent_context,
            attributes,
            start_time_ns,
        )
        self._run_id = explicit_id or _default_run_id(span, starts_trace)
        if explicit_id is None:
            span.set_attribute(attr.RUN_ID, self._run_id)
        self._parent_run_id = parent_id
        self._propagated: dict[str, AttributeValue] = {
            attr.RUN_ID: self._run_id,
            attr.WORKFLOW: self._workflow,
        }
        self._budget: RunBudget | None = None
        if checked_tokens is not None or checked_usd is not None:
            self._budget = RunBudget(
                run_id=self._run_id,
                workflow=self._workflow,
                span=span,
                budget_tokens=checked_tokens,
                budget_usd=checked_usd,
                policy=check_policy(on_budget),
            )
        with_span = trace.set_span_in_context(span, parent_context)
        super().__init__(span, otel_context.set_value(SCOPE_KEY, self, with_span))

    # --- identity -------------------------------------------------------------------------

    @property
    def run(self) -> Run:
        """The run itself (a run is its own scope)."""
        return self

    @property
    def run_id(self) -> str:
        """The run id (``agentledger.run.id``)."""
        return self._run_id

    @property
    def parent_run_id(self) -> str | None:
        """The id of the run that started this one, if any."""
        return self._parent_run_id

    @property
    def workflow(self) -> str:
        """The workflow name (``agentledger.workflow``)."""
        return self._workflow

    @property
    def propagated(self) -> Mapping[str, AttributeValue]:
        """Run attributes copied onto every span started inside this run."""
        return self._propagated

    @property
    def budget(self) -> RunBudget | None:
        """The run's running totals against its budgets, when it has one."""
        return self._budget

    @property
    def carry_forward(self) -> CarryForward | None:
        """The carry-forward estimator, when the run opted in to it."""
        return self._carry_forward

    # --- steps and calls ------------------------------------------------------------------

    def step(
        self,
        name: str,
        tier: str | None = None,
        *,
        attempt: int = 1,
        step_id: str | None = None,
        accepted: bool | None = None,
        complexity: str | None = None,
        sensitivity: str | None = None,
        context: str | None = None,
        start_time_ns: int | None = None,
    ) -> Step:
        """Start an attempt at a step; use it as a context manager.

        Args:
            name: the step's name, e.g. ``"classify"``.
            tier: the model tier of this attempt; when None, the tier map gives the tier of
                the attempt's first call's model, if it knows it.
            attempt: the attempt number (from 1); :meth:`retry` counts it for you.
            step_id: the id of the step instance; default: a fresh one.
            accepted: whether this attempt's output was used, if already known.
            complexity: routing axis: ``low`` | ``medium`` | ``high``.
            sensitivity: routing axis: ``internal`` | ``external``.
            context: routing axis (context length): ``short`` | ``medium`` | ``long``.
            start_time_ns: start time in ns since the epoch, for replayed history.
        """
        return Step(
            self._recorder,
            self,
            name,
            tier=tier,
            attempt=attempt,
            step_id=step_id,
            accepted=accepted,
            complexity=complexity,
            sensitivity=sensitivity,
            context=context,
            start_time_ns=start_time_ns,
        )

    def retry(
        self,
        previous: Step,
        tier: str | None = None,
        *,
        accepted: bool | None = None,
        complexity: str | None = None,
        sensitivity: str | None = None,
        context: str | None = None,
        start_time_ns: int | None = None,
    ) -> Step:
        """Start the next attempt of ``previous``'s step instance: same step id, attempt + 1.

        The tier and routing axes default to those given to ``previous``; pass ``tier`` to
        escalate (a cascade).
        """
        if not isinstance(previous, Step):
            logger.warning(
                "agentledger: retry() needs the Step of the previous attempt, got %r; "
                "recording a new step %r instead",
                previous,
                UNNAMED_STEP,
            )
            return self.step(UNNAMED_STEP, tier, start_time_ns=start_time_ns)
        if previous.run is not self:
            logger.warning(
                "agentledger: retry of step %r (id %s) from run %s in run %s",
                previous.name,
                previous.step_id,
                previous.run.run_id,
                self._run_id,
            )
        return Step(
            self._recorder,
            self,
            previous.name,
            tier=tier if tier is not None else previous.explicit_tier,
            attempt=previous.attempt + 1,
            step_id=previous.step_id,
            accepted=accepted,
            complexity=complexity if complexity is not None else previous.complexity,
            sensitivity=sensitivity if sensitivity is not None else previous.sensitivity,
            context=context if context is not None else previous.task_context,
            start_time_ns=start_time_ns,
        )

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
        """Start a model call outside any step (it is its own accepted attempt)."""
        return LlmCall(
            self._recorder,
            self,
            None,
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
        """Start a tool call outside any step."""
        return ToolCall(
            self._recorder, self, None, name=name, cost_usd=cost_usd, start_time_ns=start_time_ns
        )

    # --- outcome --------------------------------------------------------------------------

    def set_outcome(self, outcome: str, score: float | None = None) -> None:
        """Record the run's verdict: ``"correct"`` or ``"incorrect"``, and a score in 0..1.

        After the run has ended, the verdict is sent as an outcome span instead (see
        :meth:`Ledger.record_outcome <agentledger.Ledger.record_outcome>`).
        """
        checked = validation.choice(outcome, attr.OUTCOME, sorted(attr.OUTCOMES))
        if checked is None:
            return
        checked_score = validation.fraction(score, attr.OUTCOME_SCORE)
        if self._ended:
            self._recorder.record_outcome(
                self._run_id, checked, score=checked_score, source=OUTCOME_SOURCE_SDK
            )
            return
        self._set(attr.OUTCOME, checked)
        self._set(attr.OUTCOME_SCORE, checked_score)

    def _after_end(self) -> None:
        self._recorder.on_run_end()


def _default_run_id(span: trace.Span, starts_trace: bool) -> str:
    span_context = span.get_span_context()
    if starts_trace and span_context.is_valid:
        return format(span_context.trace_id, "032x")
    return uuid.uuid4().hex
