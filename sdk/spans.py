"""What every SDK span handle shares: one span, ended once, current inside its ``with``."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from agentledger import validation

if TYPE_CHECKING:
    from typing import Self

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recorder:
    """What runs and their children need from the :class:`~agentledger.Ledger` that made them."""

    tracer: trace.Tracer
    tier_map: Mapping[str, str]
    #: Called after a run span ends (flushes, bounded).
    on_run_end: Callable[[], object]
    #: ``record_outcome(run_id, outcome, score=..., source=..., timestamp_ns=...)``.
    record_outcome: Callable[..., None]


def start_span(
    recorder: Recorder,
    name: str,
    parent: Context | None,
    attributes: Mapping[str, AttributeValue],
    start_time_ns: object,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
) -> Span:
    """Start a span under ``parent`` (None: the current context); never raises."""
    start = validation.timestamp(start_time_ns, "start_time_ns")
    try:
        return recorder.tracer.start_span(
            name, context=parent, kind=kind, attributes=attributes, start_time=start
        )
    except Exception:  # broad: a tracing failure must not reach agent code; record nothing
        logger.warning(
            "agentledger: could not start span %r; nothing recorded", name, exc_info=True
        )
        return trace.INVALID_SPAN


class SpanHandle:
    """Base of :class:`Run`, :class:`Step`, :class:`LlmCall` and :class:`ToolCall`.

    The span starts when the handle is made. Inside ``with``, the span (and for runs and
    steps, the scope) is the current OpenTelemetry context, so that spans started there,
    ours or foreign, nest under it. The span ends on :meth:`end` or when the ``with`` block
    exits, whichever comes first; an exception leaving the block marks it as an error and
    goes on to the caller unchanged.
    """

    def __init__(self, span: Span, context: Context) -> None:
        self._span = span
        self._context = context
        self._tokens: list[object] = []
        self._ended = False

    @property
    def span(self) -> Span:
        """The OpenTelemetry span behind this handle."""
        return self._span

    @property
    def otel_context(self) -> Context:
        """The OpenTelemetry context of this handle: its span (and scope, for runs and steps)."""
        return self._context

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` has run."""
        return self._ended

    def __enter__(self) -> Self:
        try:
            self._tokens.append(otel_context.attach(self._context))
        except Exception:  # broad: without the context only nesting is lost, not the span
            logger.warning(
                "agentledger: could not make span %r current", self._describe(), exc_info=True
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and not self._ended:
                self._on_exception(exc)
            self.end()
        except Exception:  # broad: the agent's own exception (if any) must go on unchanged
            logger.warning("agentledger: could not end span %r", self._describe(), exc_info=True)
        finally:
            if self._tokens:
                otel_context.detach(self._tokens.pop())  # type: ignore[arg-type]

    def end(self, end_time_ns: int | None = None) -> None:
        """End the span now, or at ``end_time_ns`` (ns since the epoch) for replayed history.

        Later calls do nothing, so ending explicitly inside ``with`` is fine.
        """
        if self._ended:
            return
        self._ended = True
        try:
            end = validation.timestamp(end_time_ns, "end_time_ns")
            self._span.end(end_time=end)
            self._after_end()
        except Exception:  # broad: ending is best effort; the agent goes on
            logger.warning("agentledger: could not end span %r", self._describe(), exc_info=True)

    # --- for subclasses -------------------------------------------------------------------

    def _after_end(self) -> None:
        """Hook run once the span has ended."""

    def _on_exception(self, exc: BaseException) -> None:
        self._span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))

    def _set(self, key: str, value: AttributeValue | None) -> bool:
        """Set an attribute if it has a value; warn when the span has already ended."""
        if value is None:
            return False
        if self._ended:
            logger.warning(
                "agentledger: span %r has ended; attribute dropped: %s=%r",
                self._describe(),
                key,
                value,
            )
            return False
        self._span.set_attribute(key, value)
        return True

    def _set_many(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Set several attributes at once; warn when the span has already ended."""
        if not attributes:
            return
        if self._ended:
            logger.warning(
                "agentledger: span %r has ended; attributes dropped: %s",
                self._describe(),
                ", ".join(sorted(attributes)),
            )
            return
        self._span.set_attributes(attributes)

    def _describe(self) -> str:
        return getattr(self._span, "name", None) or type(self).__name__


def put(attributes: dict[str, Any], key: str, value: AttributeValue | None) -> None:
    """Add ``key`` to ``attributes`` when ``value`` is known."""
    if value is not None:
        attributes[key] = value
