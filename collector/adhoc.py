"""Read-only ad-hoc SQL over the store, for ``agentledger sql`` and ``POST /api/v1/sql``.

Two independent guards keep a query from writing. The text must be one ``SELECT`` (or
``WITH … SELECT``) statement, checked here before ClickHouse sees it; and it runs as a
subquery of our own ``SELECT`` with the ClickHouse setting ``readonly = 1``, which refuses
writes, DDL, setting changes and table functions that reach files or the network. The
subquery also caps the rows returned, since ``readonly = 1`` forbids ``max_result_rows``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from agentledger.collector.api import LedgerJSONResponse
from agentledger.collector.rollups import rollups_of
from agentledger.collector.store import Store
from agentledger.schemas.analysis import SQL_MAX_ROWS, SqlNotReadOnlyError, SqlRefusedError
from agentledger.schemas.api import SqlIn, SqlResult

logger = logging.getLogger(__name__)

#: Rows returned at most; a longer answer is cut and marked ``truncated``.
DEFAULT_MAX_ROWS = SQL_MAX_ROWS
MAX_ROWS_LIMIT = 100_000
#: Longest an ad-hoc query may run. The collector's one store connection serves ingest and
#: the API too, so a runaway query must not hold it for long.
MAX_SECONDS = 10
ALLOWED_STARTS = ("select", "with")

# Comments and string literals are blanked before looking at keywords, so that a keyword
# inside a string or a comment neither refuses nor lets a statement through.
_LITERALS = re.compile(
    r"'(?:[^'\\]|\\.|'')*'|`[^`]*`|\"[^\"]*\"|--[^\n]*|#[^\n]*|/\*.*?\*/", re.DOTALL
)
_OUTFILE = re.compile(r"\binto\s+outfile\b", re.IGNORECASE)


class AdhocSqlError(SqlRefusedError):
    """Ad-hoc SQL that is refused before it runs, or that ClickHouse refused.

    A ``SqlRefusedError`` of the schemas, so that the dashboard, which sees only the reader,
    can tell a refused query from a failing store without importing the collector.
    """


class NotReadOnlyError(AdhocSqlError, SqlNotReadOnlyError):
    """The statement is not one read-only query."""


def check_read_only(sql: str) -> str:
    """The statement without trailing semicolons, when it is one ``SELECT`` or ``WITH`` query.

    Raises:
        NotReadOnlyError: an empty text, several statements, another kind of statement, or
            ``INTO OUTFILE``; the message names what was found.
    """
    statement = sql.strip().rstrip(";").strip()
    blanked = _LITERALS.sub(" ", statement).strip()
    if not blanked:
        raise NotReadOnlyError("sql is empty: give one SELECT statement")
    if ";" in blanked:
        raise NotReadOnlyError("sql holds several statements: give one SELECT statement")
    first = blanked.split(None, 1)[0].lower().lstrip("(")
    if first not in ALLOWED_STARTS:
        raise NotReadOnlyError(
            f"sql starts with {first.upper()!r}: only SELECT and WITH queries are allowed"
        )
    if _OUTFILE.search(blanked):
        raise NotReadOnlyError("sql writes a file (INTO OUTFILE): only reading is allowed")
    return statement


# The views and tables derived by agentledger.collector.rollups; a query naming none of them
# (one over `spans` or `outcomes` alone) needs no catch-up first.
_DERIVED = re.compile(
    r"\b(llm_calls|runs|step_attempts|usage_rollup|attempt_rollup|run_rollup|group_rollup"
    r"|metric_cells)\b",
    re.IGNORECASE,
)


def reads_rollups(sql: str) -> bool:
    """Whether ``sql`` may read a derived view or table (a word match: when in doubt, yes)."""
    return _DERIVED.search(sql) is not None


def run_read_only(store: Store, sql: str, max_rows: int = DEFAULT_MAX_ROWS) -> SqlResult:
    """Run one read-only query and return at most ``max_rows`` rows.

    Raises:
        NotReadOnlyError: the text is not one read-only query (nothing ran).
        AdhocSqlError: ClickHouse refused or failed the query; carries its message.
    """
    if not 1 <= max_rows <= MAX_ROWS_LIMIT:
        raise ValueError(f"max_rows={max_rows!r} is not in 1..{MAX_ROWS_LIMIT}")
    statement = check_read_only(sql)
    if reads_rollups(statement):
        # The views read the rollups: bring them up to date with everything stored first.
        rollups_of(store).catch_up()
    else:
        rollups_of(store).wait_for_writes()  # every acknowledged row is in the tables
    # The newlines keep a trailing `--` comment of the statement from hiding our LIMIT.
    wrapped = f"SELECT * FROM (\n{statement}\n) LIMIT {max_rows + 1}"
    try:
        columns, types, rows = store.query_read_only(wrapped, max_seconds=MAX_SECONDS)
        if not rows:
            # chDB sends no column header with an empty answer; LIMIT 0 asks for the header.
            columns, types, _ = store.query_read_only(
                f"SELECT * FROM (\n{statement}\n) LIMIT 0", max_seconds=MAX_SECONDS
            )
    except Exception as exc:  # the driver raises several types; all mean the query failed
        logger.debug("ad-hoc sql refused by the store: %s", _first_line(str(exc)))
        raise AdhocSqlError(_first_line(str(exc))) from exc

    truncated = len(rows) > max_rows
    return SqlResult(
        columns=list(columns),
        types=list(types),
        rows=[[plain(value) for value in row] for row in rows[:max_rows]],
        truncated=truncated,
    )


def plain(value: Any) -> Any:
    """A value that JSON can carry: numbers, text, decimals, times (in UTC), lists and maps
    stay; anything else (UUIDs, IP addresses, bytes) becomes its text."""
    if isinstance(value, datetime) and value.tzinfo is None:
        # The driver returns the store's UTC times without a zone; say that they are UTC.
        return value.replace(tzinfo=UTC)
    if value is None or isinstance(value, bool | int | float | str | Decimal | datetime | date):
        return value
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _first_line(message: str) -> str:
    # ClickHouse appends the whole query and a stack trace; the first line says what failed.
    return message.strip().splitlines()[0] if message.strip() else "query failed"


def sql_router(store: Store, *, dependencies: Sequence[Callable[..., Any]] = ()) -> APIRouter:
    """``POST /api/v1/sql``: one read-only query, answered as columns, types and rows.

    Args:
        store: the store to read.
        dependencies: FastAPI dependencies guarding the route, e.g. one that admits only
            administrators once access keys exist.
    """
    router = APIRouter(
        prefix="/api/v1",
        default_response_class=LedgerJSONResponse,
        dependencies=[Depends(dependency) for dependency in dependencies],
    )

    @router.post(
        "/sql",
        response_model=SqlResult,
        responses={400: {"description": "Not one read-only query, or ClickHouse refused it."}},
        summary="Run one read-only SELECT over the store's tables and views",
    )
    def sql(body: SqlIn) -> Any:
        try:
            result = run_read_only(store, body.sql, body.max_rows)
        except AdhocSqlError as exc:
            detail = [{"type": "value_error", "loc": ["body", "sql"], "msg": str(exc)}]
            return JSONResponse({"detail": detail}, status_code=400)
        return LedgerJSONResponse(result.model_dump())

    return router
