"""Span and resource attribute names that agentledger reads and writes.

The GenAI names follow the OpenTelemetry semantic conventions unchanged; the
``agentledger.*`` names are ours. ``schemas/README.md`` explains each of them.
"""

from __future__ import annotations

from typing import Final

# --- span kinds -------------------------------------------------------------------------
SPAN_KIND: Final = "agentledger.span.kind"
KIND_RUN: Final = "run"
KIND_STEP: Final = "step"
KIND_LLM: Final = "llm"
KIND_TOOL: Final = "tool"
KIND_OUTCOME: Final = "outcome"
SPAN_KINDS: Final = frozenset({KIND_RUN, KIND_STEP, KIND_LLM, KIND_TOOL, KIND_OUTCOME})

# --- resource ---------------------------------------------------------------------------
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"
PROJECT: Final = "agentledger.project"
DEFAULT_PROJECT: Final = "default"

# --- run --------------------------------------------------------------------------------
RUN_ID: Final = "agentledger.run.id"
RUN_PARENT_ID: Final = "agentledger.run.parent_id"
WORKFLOW: Final = "agentledger.workflow"
OUTCOME: Final = "agentledger.outcome"
OUTCOME_SCORE: Final = "agentledger.outcome.score"
OUTCOME_SOURCE: Final = "agentledger.outcome.source"
OUTCOME_CORRECT: Final = "correct"
OUTCOME_INCORRECT: Final = "incorrect"
OUTCOMES: Final = frozenset({OUTCOME_CORRECT, OUTCOME_INCORRECT})
BUDGET_TOKENS: Final = "agentledger.budget.tokens"
BUDGET_USD: Final = "agentledger.budget.usd"
# The event a run span records when its running totals first go over one of its budgets;
# it carries BUDGET_TOKENS / BUDGET_USD (the ceilings) and the attributes below.
BUDGET_EXCEEDED_EVENT: Final = "agentledger.budget.exceeded"
#: Which ceiling was crossed: "tokens" or "usd".
BUDGET_LIMIT: Final = "agentledger.budget.limit"
BUDGET_ACTUAL_TOKENS: Final = "agentledger.budget.actual_tokens"
BUDGET_ACTUAL_USD: Final = "agentledger.budget.actual_usd"
#: Calls whose cost the SDK could not price, so actual_usd leaves them out.
BUDGET_UNPRICED_CALLS: Final = "agentledger.budget.unpriced_calls"
#: The policy applied: "warn", "callback" or "raise".
BUDGET_POLICY: Final = "agentledger.budget.policy"
BUDGET_LIMIT_TOKENS: Final = "tokens"
BUDGET_LIMIT_USD: Final = "usd"
CONVERSATION_ID: Final = "gen_ai.conversation.id"
AGENT_NAME: Final = "gen_ai.agent.name"

# --- step (one attempt at one logical step) ---------------------------------------------
STEP_NAME: Final = "agentledger.step.name"
STEP_ID: Final = "agentledger.step.id"
TIER: Final = "agentledger.tier"
ATTEMPT: Final = "agentledger.attempt"
ATTEMPT_ACCEPTED: Final = "agentledger.attempt.accepted"
TASK_COMPLEXITY: Final = "agentledger.task.complexity"
TASK_SENSITIVITY: Final = "agentledger.task.sensitivity"
TASK_CONTEXT: Final = "agentledger.task.context"
TASK_COMPLEXITIES: Final = ("low", "medium", "high")
TASK_SENSITIVITIES: Final = ("internal", "external")
TASK_CONTEXTS: Final = ("short", "medium", "long")

# --- llm call ---------------------------------------------------------------------------
OPERATION_NAME: Final = "gen_ai.operation.name"
OPERATION_INVOKE_AGENT: Final = "invoke_agent"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"
OPERATION_CHAT: Final = "chat"
PROVIDER_NAME: Final = "gen_ai.provider.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
CACHE_WRITE_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
REASONING_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
REINGESTED_TOKENS: Final = "agentledger.context.reingested_tokens"
PREDICTED_TOKENS: Final = "agentledger.tokens.predicted"
COST_USD: Final = "agentledger.cost.usd"
ERROR_TYPE: Final = "error.type"

# --- tool call --------------------------------------------------------------------------
TOOL_NAME: Final = "gen_ai.tool.name"

# Attributes that the SDK copies from the enclosing run and step onto every span started
# inside them, so that the collector needs no lookups at ingest.
PROPAGATED: Final = (
    RUN_ID,
    WORKFLOW,
    STEP_NAME,
    STEP_ID,
    TIER,
    ATTEMPT,
    TASK_COMPLEXITY,
    TASK_SENSITIVITY,
    TASK_CONTEXT,
)
