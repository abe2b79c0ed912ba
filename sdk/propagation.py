"""Copying run and step context onto every span started inside them.

A run or step of the SDK puts itself into the OpenTelemetry context (under
:data:`SCOPE_KEY`) while its ``with`` block runs. :class:`PropagatingSpanProcessor` reads it
when any span starts and copies the attributes of ``schemas.attributes.PROPAGATED`` (run id,
workflow, step name and id, tier, attempt, routing axes) onto the span, so that the
collector needs no lookups at ingest. Because the scope travels in the ordinary context, it
reaches spans of other instrumentation too, whichever tracer started them, as long as their
tracer provider has this processor.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.util.types import AttributeValue

from agentledger.schemas import attributes as attr

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import Span

    from agentledger.run import Run

logger = logging.getLogger(__name__)

#: Context key under which the innermost SDK run or step is stored.
SCOPE_KEY = otel_context.create_key("agentledger.scope")

# These spans describe themselves (a child run is not part of its parent's step); every
# other span, ours or foreign, gets the enclosing scope's attributes where it has none.
_SELF_DESCRIBED = frozenset({attr.KIND_RUN, attr.KIND_STEP, attr.KIND_OUTCOME})


class Scope(Protocol):
    """A run or step as seen by the processor."""

    @property
    def run(self) -> Run:
        """The run that this scope belongs to (a run is its own)."""
        ...

    @property
    def propagated(self) -> Mapping[str, AttributeValue]:
        """The attributes to copy onto spans started inside this scope."""
        ...


def current_scope(context: otel_context.Context | None = None) -> Scope | None:
    """The innermost SDK run or step in ``context`` (default: the current context)."""
    scope = otel_context.get_value(SCOPE_KEY, context)
    return scope  # type: ignore[return-value]


class PropagatingSpanProcessor(SpanProcessor):
    """Copies the enclosing run's and step's attributes onto each span when it starts.

    Every :class:`~agentledger.Ledger` has one on its own tracer provider. Add another to an
    application's tracer provider so that spans of the application's instrumentation
    (HTTP clients, model clients, frameworks) started inside an SDK step carry the run and
    step too::

        app_provider.add_span_processor(agentledger.PropagatingSpanProcessor())

    Attributes that a span already has are left alone. The processor keeps no state.
    """

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        try:
            scope = current_scope(parent_context)
            if scope is None:
                return
            existing = span.attributes or {}
            if existing.get(attr.SPAN_KIND) in _SELF_DESCRIBED:
                return
            for key, value in scope.propagated.items():
                if key not in existing:
                    span.set_attribute(key, value)
        except Exception:  # broad: a failure here must never break the host's tracing
            logger.warning(
                "agentledger: could not copy run/step attributes onto span %r; span kept as is",
                getattr(span, "name", None),
                exc_info=True,
            )
