"""The entry point of the SDK: a private tracer provider that exports to the collector."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from agentledger import credentials, validation
from agentledger.budget import BudgetPolicy
from agentledger.flushing import BoundedFlusher, HealthTrackingExporter
from agentledger.propagation import PropagatingSpanProcessor
from agentledger.reingestion import Mode
from agentledger.run import OUTCOME_SOURCE_SDK, Run
from agentledger.schemas import attributes as attr
from agentledger.schemas import environment as env
from agentledger.spans import Recorder

logger = logging.getLogger(__name__)

INSTRUMENTATION_NAME = "agentledger"
TRACES_PATH = "/v1/traces"
#: Spans the SDK holds while the collector is slow or down; past it, the oldest are dropped.
#: The OpenTelemetry default (2,048) drops most of a burst of 10,000 spans.
MAX_QUEUE_SPANS = 100_000
#: Spans per OTLP request: about 0.5 MB of protobuf for typical llm spans.
EXPORT_BATCH_SPANS = 512
#: How long ended spans may wait before a batch goes out without a flush.
SCHEDULE_DELAY_MILLIS = 1_000
DEFAULT_FLUSH_TIMEOUT_SECONDS = 5.0
DEFAULT_EXPORT_TIMEOUT_SECONDS = 5.0


class Ledger:
    """Records agent runs as OpenTelemetry spans and exports them to the collector.

    The ledger owns a private tracer provider: it never sets the global one, so it works
    beside an application's own tracing. Its spans still start from the current
    OpenTelemetry context, so they nest under the application's current span, and the
    application's spans started inside a run or step nest under ours.

    Args:
        service_name: the agent's name (resource ``service.name``).
        service_version: the agent's version, to compare releases.
        environment: ``deployment.environment.name``, e.g. ``"production"``.
        project: the agentledger project (default ``"default"``).
        endpoint: base URL of the collector; spans go to ``{endpoint}/v1/traces``.
            Default: ``OTEL_EXPORTER_OTLP_ENDPOINT``, else ``http://127.0.0.1:4318``.
        api_key: key sent to the collector as ``Authorization: Bearer``; default:
            ``AGENTLEDGER_API_KEY``, else none (a collector without keys).
        exporter: a span exporter to use instead of OTLP/HTTP (tests, replays).
        id_generator: an OpenTelemetry id generator (replays pass a deterministic one).
        tier_map: model name -> tier, for steps and calls without an explicit tier.
        flush_timeout_seconds: the longest that ending a run, :meth:`flush` or
            :meth:`shutdown` waits for the collector.
        export_timeout_seconds: the longest one OTLP request may take, retries included.
        flush_on_run_end: flush when a run ends (bounded by ``flush_timeout_seconds``).

    Raises:
        ValueError: an argument has a wrong type or value. After construction the SDK logs
            and drops instead; the one exception it raises then is
            :class:`~agentledger.BudgetExceeded`, for runs started with ``on_budget="raise"``.
    """

    def __init__(
        self,
        service_name: str,
        *,
        service_version: str | None = None,
        environment: str | None = None,
        project: str = attr.DEFAULT_PROJECT,
        endpoint: str | None = None,
        api_key: str | None = None,
        exporter: SpanExporter | None = None,
        id_generator: IdGenerator | None = None,
        tier_map: Mapping[str, str] | None = None,
        flush_timeout_seconds: float = DEFAULT_FLUSH_TIMEOUT_SECONDS,
        export_timeout_seconds: float = DEFAULT_EXPORT_TIMEOUT_SECONDS,
        flush_on_run_end: bool = True,
    ) -> None:
        resource_attributes: dict[str, Any] = {
            attr.SERVICE_NAME: validation.require_text(service_name, "service_name"),
            attr.PROJECT: validation.require_text(project, "project"),
        }
        version = validation.require_text(service_version, "service_version", optional=True)
        if version is not None:
            resource_attributes[attr.SERVICE_VERSION] = version
        deployment = validation.require_text(environment, "environment", optional=True)
        if deployment is not None:
            resource_attributes[attr.DEPLOYMENT_ENVIRONMENT] = deployment
        self._flush_timeout = validation.require_seconds(
            flush_timeout_seconds, "flush_timeout_seconds"
        )
        export_timeout = validation.require_seconds(
            export_timeout_seconds, "export_timeout_seconds"
        )
        if not isinstance(flush_on_run_end, bool):
            raise ValueError(f"flush_on_run_end must be True or False, got {flush_on_run_end!r}")
        self._flush_on_run_end = flush_on_run_end
        self._tier_map = validation.require_tier_map(tier_map, "tier_map")
        if exporter is not None and not callable(getattr(exporter, "export", None)):
            raise ValueError(f"exporter must be an OpenTelemetry SpanExporter, got {exporter!r}")
        if id_generator is not None and not (
            callable(getattr(id_generator, "generate_span_id", None))
            and callable(getattr(id_generator, "generate_trace_id", None))
        ):
            raise ValueError(
                f"id_generator must be an OpenTelemetry IdGenerator, got {id_generator!r}"
            )

        if endpoint is not None:
            validation.require_endpoint(endpoint, "endpoint")
        if exporter is None:
            self._endpoint: str | None = _resolve_endpoint(endpoint)
            headers = credentials.bearer_headers(api_key)
            exporter = _otlp_exporter(self._endpoint + TRACES_PATH, export_timeout, headers)
        else:
            self._endpoint = None
        self._export_health = HealthTrackingExporter(exporter)
        exporter = self._export_health
        self._provider = TracerProvider(
            resource=Resource.create(resource_attributes),
            id_generator=id_generator,
            # A ledger must see every run: never sample, whatever the environment or the
            # application's parent span decided.
            sampler=ALWAYS_ON,
            shutdown_on_exit=False,
        )
        self._provider.add_span_processor(PropagatingSpanProcessor())
        batch = BatchSpanProcessor(
            exporter,
            max_queue_size=MAX_QUEUE_SPANS,
            schedule_delay_millis=SCHEDULE_DELAY_MILLIS,
            max_export_batch_size=EXPORT_BATCH_SPANS,
            export_timeout_millis=export_timeout * 1000,
        )
        self._provider.add_span_processor(batch)
        self._flusher = BoundedFlusher(batch.force_flush)
        self._tracer = self._provider.get_tracer(INSTRUMENTATION_NAME)
        self._recorder = Recorder(
            tracer=self._tracer,
            tier_map=self._tier_map,
            on_run_end=self._after_run,
            record_outcome=self.record_outcome,
        )
        self._closed = False
        # Bound to the provider, not to the ledger, so that spans still queued when the
        # ledger is dropped go out at exit too.
        self._exit_hook = functools.partial(
            _drain, self._flusher, self._provider, self._flush_timeout
        )
        atexit.register(self._exit_hook)

    # --- configuration --------------------------------------------------------------------

    @property
    def endpoint(self) -> str | None:
        """The collector's base URL, or None when an explicit exporter is used."""
        return self._endpoint

    @property
    def tracer_provider(self) -> TracerProvider:
        """The ledger's private tracer provider.

        Hand it to other instrumentation (``SomeInstrumentor().instrument(
        tracer_provider=ledger.tracer_provider)``) to send its spans to agentledger with
        the run and step attributes copied on.
        """
        return self._provider

    @property
    def tier_map(self) -> Mapping[str, str]:
        """Model name -> tier, as given."""
        return dict(self._tier_map)

    # --- recording ------------------------------------------------------------------------

    def run(
        self,
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
    ) -> Run:
        """Start a run of ``workflow``; use it as a context manager.

        Args:
            workflow: the workflow's name, e.g. ``"support-ticket"``.
            run_id: the run's id; default: the trace id when the run starts a trace.
            parent_run_id: the run that started this one; default: the enclosing SDK
                run, if any.
            budget_tokens: the run's token budget.
            budget_usd: the run's cost budget in USD.
            conversation_id: ``gen_ai.conversation.id``.
            agent_name: ``gen_ai.agent.name``; default: the workflow.
            reingestion: ``"explicit"`` records only the re-ingested counts given to
                ``record_usage``; ``"carry-forward"`` estimates the others for chat-loop
                agents (see :mod:`agentledger.reingestion`).
            start_time_ns: start time in ns since the epoch, for replayed history.
            new_trace: start a trace of its own, ignoring the current context (no parent
                span, no enclosing run): for replays, whose runs belong to no live request.
            on_budget: what happens when the run's totals first go over ``budget_tokens`` or
                ``budget_usd``: ``"warn"`` logs a warning, a callable gets the
                :class:`~agentledger.BudgetBreach`, ``"raise"`` raises
                :class:`~agentledger.BudgetExceeded` from the call that crossed the ceiling
                (see :mod:`agentledger.budget`). The breach is also an event on the run span.
        """
        return Run(
            self._recorder,
            workflow,
            run_id=run_id,
            parent_run_id=parent_run_id,
            budget_tokens=budget_tokens,
            budget_usd=budget_usd,
            conversation_id=conversation_id,
            agent_name=agent_name,
            reingestion=reingestion,
            start_time_ns=start_time_ns,
            new_trace=new_trace,
            on_budget=on_budget,
        )

    def record_outcome(
        self,
        run_id: str,
        outcome: str,
        score: float | None = None,
        source: str = OUTCOME_SOURCE_SDK,
        timestamp_ns: int | None = None,
    ) -> None:
        """Record a verdict that arrives after its run ended, as an outcome span.

        The latest verdict of a run (by ``timestamp_ns``, default now) wins.
        """
        try:
            checked_run_id = validation.text(run_id, attr.RUN_ID)
            checked = validation.choice(outcome, attr.OUTCOME, sorted(attr.OUTCOMES))
            if checked_run_id is None or checked is None:
                logger.warning(
                    "agentledger: outcome dropped: run_id=%r outcome=%r", run_id, outcome
                )
                return
            at = validation.timestamp(timestamp_ns, "timestamp_ns") or time.time_ns()
            attributes: dict[str, Any] = {
                attr.SPAN_KIND: attr.KIND_OUTCOME,
                attr.RUN_ID: checked_run_id,
                attr.OUTCOME: checked,
                attr.OUTCOME_SOURCE: validation.text(source, attr.OUTCOME_SOURCE)
                or OUTCOME_SOURCE_SDK,
            }
            checked_score = validation.fraction(score, attr.OUTCOME_SCORE)
            if checked_score is not None:
                attributes[attr.OUTCOME_SCORE] = checked_score
            # A root span of its own: the verdict belongs to the run it names, not to
            # whatever happens to be current where it is recorded.
            span = self._tracer.start_span(
                attr.KIND_OUTCOME,
                context=otel_context.Context(),
                attributes=attributes,
                start_time=at,
            )
            span.end(end_time=at)
            self._after_run()
        except Exception:  # broad: recording must never fail the caller
            logger.warning(
                "agentledger: could not record outcome of run %r; dropped", run_id, exc_info=True
            )

    # --- delivery -------------------------------------------------------------------------

    def flush(self, timeout_seconds: float | None = None) -> bool:
        """Send the spans recorded so far; wait at most ``timeout_seconds``.

        Returns:
            True when every span that ended before the call was handed to the exporter in
            time. A span that the collector then refused is lost; the exporter logs it.
        """
        timeout = self._flush_timeout
        if timeout_seconds is not None:
            checked = validation.amount(timeout_seconds, "timeout_seconds")
            timeout = checked if checked is not None else timeout
        try:
            return self._flusher.flush(timeout)
        except Exception:  # broad: flushing is best effort
            logger.warning("agentledger: flush failed", exc_info=True)
            return False

    def shutdown(self) -> None:
        """Flush, then stop exporting; waits at most about twice the flush timeout.

        Spans recorded afterwards are dropped. Also runs at interpreter exit.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._exit_hook)
        self._exit_hook()

    def _after_run(self) -> None:
        if not self._flush_on_run_end or self._closed:
            return
        # Don't wait for a collector that failed the last export or did not answer the
        # previous flush: one bounded wait per outage, then runs end at once until it is back.
        timeout = self._flush_timeout if self._export_health.healthy else 0.0
        if not self._flusher.flush(timeout, wait_if_stalled=False):
            logger.debug("agentledger: spans of the ended run not flushed yet")


def _resolve_endpoint(endpoint: str | None) -> str:
    if endpoint is not None:
        return validation.require_endpoint(endpoint, "endpoint")
    for variable in (env.AGENTLEDGER_ENDPOINT, env.OTEL_EXPORTER_OTLP_ENDPOINT):
        from_env = os.environ.get(variable)
        if from_env:
            return validation.require_endpoint(from_env, variable)
    return env.DEFAULT_ENDPOINT


def _otlp_exporter(
    url: str, timeout_seconds: float, headers: dict[str, str] | None = None
) -> SpanExporter:
    # Imported here: the exporter pulls in protobuf and requests, which a ledger with an
    # explicit exporter never needs.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=url, timeout=timeout_seconds, headers=headers)


def _drain(flusher: BoundedFlusher, provider: TracerProvider, timeout_seconds: float) -> None:
    """Flush and shut down, each bounded by ``timeout_seconds``; never raises."""
    try:
        flusher.flush(timeout_seconds)
        flusher.close()
        # The provider's shutdown joins the batch worker for up to 30 s when the collector
        # is down; run it aside so that the caller waits no longer than its own bound.
        closer = threading.Thread(
            target=provider.shutdown, name="agentledger-shutdown", daemon=True
        )
        closer.start()
        closer.join(timeout_seconds)
    except Exception:  # broad: runs at interpreter exit, where nothing may raise
        logger.warning("agentledger: shutdown failed; queued spans may be lost", exc_info=True)


__all__ = ["Ledger"]
