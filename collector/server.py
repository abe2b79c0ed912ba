"""The serving process: OTLP/HTTP ingest, the query API and the dashboard in one ASGI app.

``POST /v1/traces`` answers as the OTLP/HTTP specification says: 200 with an
``ExportTraceServiceResponse`` in the request's encoding (with ``partial_success`` when some
spans were rejected), and for a request that cannot be read a 4xx carrying a
``google.rpc.Status`` whose message names what was wrong.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from agentledger.collector import auth, otlp, request_errors
from agentledger.collector.ingest_workers import (
    DecodedExport,
    ExportDecoder,
    IngestWorkers,
    WorkersUnavailable,
)
from agentledger.collector.mapping import SPAN_COLUMNS, SpanMapper
from agentledger.collector.pricing import Pricer
from agentledger.collector.rollups import RollupLoop, rollups_of
from agentledger.collector.settings import CollectorSettings, SettingsError
from agentledger.collector.spool import (
    DurableWriter,
    Spool,
    SpoolDrainer,
    SpooledBody,
    SpoolError,
    SpoolFull,
    default_directory,
)
from agentledger.collector.store import Store, StoreError
from agentledger.collector.writer import RowWriter
from agentledger.schemas.api import OutcomeIn

logger = logging.getLogger(__name__)

# google.rpc.Code values carried in error answers.
_RPC_INVALID_ARGUMENT: Final = 3
_RPC_RESOURCE_EXHAUSTED: Final = 8
_RPC_UNAVAILABLE: Final = 14
_RPC_CODES: Final = {413: _RPC_RESOURCE_EXHAUSTED, 503: _RPC_UNAVAILABLE}
#: Seconds an exporter is asked to wait before retrying when the store failed.
RETRY_AFTER_SECONDS: Final = 5
# Rejection messages quoted in one answer; the rest are counted.
_QUOTED_REJECTIONS: Final = 3


def create_app(settings: CollectorSettings | None = None, *, store: Store | None = None) -> FastAPI:
    """Build the collector app.

    Args:
        settings: Store DSN and tier map; read from the environment when omitted.
        store: An open store to use instead of opening ``settings.store``; the caller keeps
            it and closes it. A store the app opened itself is closed at shutdown.
    """
    settings = settings or CollectorSettings()
    tiers = settings.tiers()
    mapper = SpanMapper(
        tier_map=tiers,
        pricer=Pricer(price_file=settings.prices()),
        context_rules=settings.context_rules(),
    )
    # Checked before the store is opened: a collector open to strangers must not start.
    keys = auth.load_keys(settings.keys_file)
    auth.check_exposure(settings.host, keys)
    owns_store = store is None
    if store is None:
        store = Store(settings.store, cluster=settings.cluster_layout())
    store.migrate()
    # Read now so that a bad alerts file stops the start; evaluation runs with the lifespan.
    from agentledger.collector.alerts import scheduler_for

    alerts = scheduler_for(settings, store)
    writer = RowWriter(store)
    # Rows are spooled durably before any 2xx; the drainer replays what the store refused.
    spool = Spool(
        settings.spool_dir or default_directory(store.dsn),
        max_bytes=settings.spool_max_bytes,
        body_reader=lambda body, header: _replay_body(body, header, mapper),
    )
    durable = DurableWriter(spool, writer)
    drainer = SpoolDrainer(spool, writer.write)
    drainer.start()
    rollups = rollups_of(store)
    # Acknowledged spans may still wait in the writer: every read flushes it first.
    rollups.add_barrier(writer.flush)
    rollup_loop = RollupLoop(rollups, settings.rollup_interval_seconds)
    workers = None
    if settings.ingest_workers:
        span_types = store.arrow_types("spans")
        workers = IngestWorkers(
            settings, [span_types[name] for name in SPAN_COLUMNS], settings.ingest_workers
        )
    decoder = ExportDecoder(mapper, workers, settings.max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if alerts is not None:
            alerts.start()
        if workers is not None:
            # Before /healthz answers, so that the first exports need not wait for them.
            await run_in_threadpool(workers.start)
        rollup_loop.start()
        yield
        if alerts is not None:
            await run_in_threadpool(alerts.stop)
        await run_in_threadpool(rollup_loop.close)
        if workers is not None:
            await run_in_threadpool(workers.close)
        await run_in_threadpool(drainer.close)
        rollups.remove_barrier(writer.flush)
        await run_in_threadpool(writer.close)
        spool.close()
        if owns_store:
            store.close()

    app = FastAPI(title="agentledger", lifespan=lifespan)
    app.state.store = store
    app.state.writer = writer
    app.state.spool = spool
    request_errors.install(app)  # never a 500 for a body that is not UTF-8
    sessions = auth.Sessions(settings.session_secret)
    app.add_middleware(auth.AccessGuard, keys=keys, sessions=sessions)
    app.include_router(auth.login_router(keys, sessions))

    @app.post("/v1/traces", summary="OTLP/HTTP trace export")
    async def export_traces(request: Request) -> Response:
        return await _export_traces(request, decoder, durable)

    @app.post("/api/v1/outcomes", summary="Record verdicts on runs")
    async def post_outcomes(outcomes: list[OutcomeIn]) -> Response:
        rows = []
        for index, outcome in enumerate(outcomes):
            outcome = auth.claim_project(outcome, auth.current_principal())
            try:
                rows.append(outcome_row(outcome))
            except ValueError as exc:
                moment = outcome.timestamp.isoformat() if outcome.timestamp else None
                error = {"loc": ["body", index, "timestamp"], "msg": str(exc), "input": moment}
                return JSONResponse({"detail": [error]}, status_code=422)
        try:
            await durable.write((), rows)
        except SpoolError as exc:  # neither store nor spool took the rows: the caller may retry
            return _unavailable(str(exc))
        return JSONResponse({"accepted": len(rows)})

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    _include_reader_apps(app, store, tiers)
    return app


def _include_reader_apps(app: FastAPI, store: Store, tiers: dict[str, str]) -> None:
    """Add the query API and mount the dashboard, both reading through one StoreReader."""
    # Imported here so that importing this module (e.g. for serve's --help) stays light.
    from a2wsgi import WSGIMiddleware

    from agentledger.collector.api import api_router
    from agentledger.collector.queries import StoreReader
    from agentledger.dashboard.app import create_dash_app

    # Every read is limited to the project of the request's key (no-op without keys).
    reader = auth.scoped_reader(StoreReader(store, tier_map=tiers))
    app.include_router(api_router(reader))
    from agentledger.collector.budget_api import budget_router

    app.include_router(budget_router(reader))
    from agentledger.collector.analysis_api import analysis_router

    app.include_router(analysis_router(reader))
    from agentledger.collector.adhoc import sql_router

    # SQL reads every project: it needs an admin key of project "*".
    app.include_router(sql_router(store), dependencies=[Depends(auth.require_sql_admin)])
    dash_app = create_dash_app(reader, requests_pathname_prefix="/dashboard/")
    app.mount("/dashboard", WSGIMiddleware(dash_app.server))  # type: ignore[arg-type]


async def _export_traces(
    request: Request, decoder: ExportDecoder, durable: DurableWriter
) -> Response:
    max_bytes = decoder.max_bytes
    try:
        media = otlp.media_type(request.headers.get("content-type"))
    except otlp.UnsupportedMediaType as exc:
        return _status(exc.status_code, str(exc), otlp.JSON)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        message = f"Content-Length {length} is over the limit of {max_bytes}"
        return _status(413, message, media)

    encoding = request.headers.get("content-encoding")
    principal = auth.current_principal()
    try:
        body = await otlp.read_body(request.stream(), max_bytes)
        batch = await decoder.decode(body, encoding, media, principal)
    except otlp.OtlpError as exc:
        logger.warning("export refused: status=%d reason=%s", exc.status_code, exc)
        return _status(exc.status_code, str(exc), media)
    except WorkersUnavailable as exc:
        return _unavailable(str(exc), media)

    rejected = len(batch.rejected)
    message = ""
    if rejected:
        message = _rejection_message(batch)
        logger.warning("spans rejected: count=%d stored=%d %s", rejected, batch.span_count, message)
        if not batch.span_count:
            return _status(400, message, media)
    # The spool keeps the plain body, not the rows: replay decodes and maps it again.
    source = SpooledBody(batch.plain, {"media": media, "project": principal.project})
    try:
        await durable.write(batch.spans, batch.outcomes, source=source)
    except SpoolFull as exc:  # the store has been away for long: the exporter retries later
        logger.warning("export refused: spool full, spans=%d: %s", batch.span_count, exc)
        return _unavailable(str(exc), media)
    except SpoolError as exc:  # neither the store nor the spool took the rows
        logger.error("export refused: spool unwritable, spans=%d: %s", batch.span_count, exc)
        return _unavailable(str(exc), media)

    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if media == otlp.PROTOBUF:
        return Response(response.SerializeToString(), media_type=otlp.PROTOBUF)
    return Response(json.dumps(json_format.MessageToDict(response)), media_type=otlp.JSON)


def _replay_body(
    body: bytes, header: dict[str, str], mapper: SpanMapper
) -> tuple[list[list[Any]], list[list[Any]]]:
    """The rows of a spooled export, mapped as when it was acknowledged."""
    decoded = otlp.decode(body, header["media"])
    auth.claim_resources(decoded, auth.Principal("spool", header["project"], "ingest"))
    batch = mapper.map(decoded)
    return batch.spans, batch.outcomes


def _rejection_message(batch: DecodedExport) -> str:
    total = len(batch.rejected) + batch.span_count
    quoted = "; ".join(batch.rejected[:_QUOTED_REJECTIONS])
    more = len(batch.rejected) - _QUOTED_REJECTIONS
    suffix = f"; and {more} more" if more > 0 else ""
    return f"{len(batch.rejected)} of {total} spans rejected: {quoted}{suffix}"


def _status(http_status: int, message: str, media: str) -> Response:
    """An OTLP error answer: a google.rpc.Status in the request's encoding."""
    code = _RPC_CODES.get(http_status, _RPC_INVALID_ARGUMENT)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if http_status == 503 else None
    if media == otlp.PROTOBUF:
        body = status_pb2.Status(code=code, message=message).SerializeToString()
        return Response(body, status_code=http_status, media_type=otlp.PROTOBUF, headers=headers)
    return JSONResponse(
        {"code": code, "message": message}, status_code=http_status, headers=headers
    )


def _unavailable(reason: str, media: str = otlp.JSON) -> Response:
    return _status(503, f"the store did not accept the rows, retry later: {reason}", media)


def outcome_row(outcome: OutcomeIn, now_ns: int | None = None) -> list[Any]:
    """An ``outcomes`` row for a verdict posted to the API.

    A verdict with a timestamp is keyed by its content, so posting it again stores it once;
    one without is decided now and gets a fresh key.
    """
    if outcome.timestamp is None:
        decided_at = now_ns if now_ns is not None else time.time_ns()
        key = f"api:{uuid.uuid4().hex}"
    else:
        decided_at = _unix_ns(outcome.timestamp)
        key = f"api:{outcome.source}:{decided_at}:{outcome.outcome}:{outcome.score}"
    return [
        outcome.project,
        outcome.run_id,
        outcome.outcome,
        outcome.score,
        outcome.source,
        decided_at,
        key,
    ]


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _unix_ns(moment: datetime) -> int:
    """Nanoseconds since the epoch; a naive datetime is read as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if ns < 0:
        raise ValueError(f"timestamp {moment.isoformat()!r} is before 1970-01-01T00:00:00Z")
    return ns


def configure_logging(level: int = logging.INFO) -> None:
    """Give the root logger a handler unless the process already configured one."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve(host: str | None = None, port: int | None = None, store: str | None = None) -> int:
    """Run the collector until interrupted; arguments left as None come from the environment.

    Returns the process exit code: 0 after a clean shutdown (Ctrl+C), 1 when it could not
    start. After SIGTERM, uvicorn ends the process by that signal once it has shut down.
    """
    import uvicorn

    configure_logging()
    overrides = {"host": host, "port": port, "store": store}
    try:
        settings = CollectorSettings(**{k: v for k, v in overrides.items() if v is not None})
        app = create_app(settings)
    except (StoreError, SettingsError, SpoolError, ValidationError) as exc:
        logger.error("collector not started: %s", exc)
        return 1

    # log_config=None keeps the logging configured above; one worker, since a chDB store
    # can be held by one process only.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    logger.info(
        "collector starting: host=%s port=%d store=%s",
        settings.host,
        settings.port,
        app.state.store.dsn,
    )
    try:
        uvicorn.Server(config).run()
    except SystemExit as exc:  # uvicorn exits this way when it cannot start, e.g. port taken
        if exc.code:
            logger.error("collector not started: uvicorn exited with %r", exc.code)
            return 1
    except KeyboardInterrupt:
        # uvicorn re-raises the SIGINT it caught once it has shut down cleanly; a SIGTERM is
        # re-raised the same way and ends the process by that signal, also after a clean
        # shutdown with every buffered row written.
        pass
    logger.info("collector stopped")
    return 0
