"""agentledger: what each correct outcome of your LLM agent costs, and where the tokens go.

The SDK records agent runs, their steps (with retries as attempts) and the model and tool
calls inside them as OpenTelemetry spans, and exports them to the agentledger collector::

    import agentledger

    ledger = agentledger.Ledger("support-agent")
    with ledger.run("support-ticket") as run:
        with run.step("classify", tier="small") as step:
            with step.llm(model="gpt-4o-mini", provider="openai") as call:
                call.record_usage(input_tokens=1_200, output_tokens=40)
        run.set_outcome("correct")

Names are imported on first use, so that ``import agentledger`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentledger.budget import BudgetBreach, BudgetExceeded
    from agentledger.calls import LlmCall, ToolCall
    from agentledger.ledger import Ledger
    from agentledger.propagation import PropagatingSpanProcessor
    from agentledger.run import Run
    from agentledger.step import Step

__all__ = [
    "BudgetBreach",
    "BudgetExceeded",
    "Ledger",
    "LlmCall",
    "PropagatingSpanProcessor",
    "Run",
    "Step",
    "ToolCall",
]

_MODULE_OF = {
    "BudgetBreach": "agentledger.budget",
    "BudgetExceeded": "agentledger.budget",
    "Ledger": "agentledger.ledger",
    "LlmCall": "agentledger.calls",
    "PropagatingSpanProcessor": "agentledger.propagation",
    "Run": "agentledger.run",
    "Step": "agentledger.step",
    "ToolCall": "agentledger.calls",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'agentledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
