"""``agentledger sql``: one read-only query over the ledger, printed as a table.

The query goes through a running collector's ``POST /api/v1/sql`` when ``--endpoint`` is
given or when a collector holds the chDB store (chDB lets one process open a directory);
otherwise it runs on the store directly, which needs the ``server`` extra. Both ways refuse
anything but one ``SELECT`` and run it with ClickHouse's ``readonly = 1``.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from agentledger import credentials
from agentledger.schemas import environment as env
from agentledger.schemas.api import SqlResult

SQL_PATH = "/api/v1/sql"
TIMEOUT_SECONDS = 300.0
# Exit codes: 0 printed, 1 the query was refused or failed, 2 nowhere to run it.
EXIT_REFUSED = 1
EXIT_UNREACHABLE = 2


class SqlConsoleError(Exception):
    """The query could not be run; ``exit_code`` says whether it was refused or unreachable."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_sql(
    sql: str,
    *,
    endpoint: str | None,
    store: str | None,
    max_rows: int,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``sql`` and print its table to ``out``; return the process exit code.

    Args:
        endpoint: a collector's base URL to query through; None to use the store directly,
            or the default endpoint when a collector holds the store.
        store: the store setting (``chdb:///path``, a path, ``http://host:8123``); None is
            ``./agentledger-data``.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if endpoint is not None:
            result = query_endpoint(endpoint, sql, max_rows)
        else:
            result = _query_store_or_server(sql, store, max_rows)
    except SqlConsoleError as exc:
        print(f"agentledger sql: {exc}", file=err)
        return exc.exit_code
    print(format_table(result), file=out)
    return 0


def _query_store_or_server(sql: str, store: str | None, max_rows: int) -> SqlResult:
    try:
        from agentledger.collector.adhoc import AdhocSqlError, run_read_only
        from agentledger.collector.store import Store, StoreError, resolve_dsn
    except ImportError as exc:
        raise SqlConsoleError(
            "reading a store directly needs the server extra: pip install 'agentledger[server]';"
            f" or pass --endpoint URL of a running collector ({exc})",
            EXIT_UNREACHABLE,
        ) from exc

    dsn = resolve_dsn(store)
    if dsn.startswith("chdb://") and not Path(dsn.removeprefix("chdb://")).is_dir():
        raise SqlConsoleError(
            f"no store at {dsn!r}: pass --store, or --endpoint of a running collector",
            EXIT_UNREACHABLE,
        )
    if dsn.startswith("chdb://") and store_is_held(Path(dsn.removeprefix("chdb://"))):
        # A collector holds the chDB directory: ask it instead.
        endpoint = default_endpoint()
        try:
            return query_endpoint(endpoint, sql, max_rows)
        except SqlConsoleError as exc:
            if exc.exit_code != EXIT_UNREACHABLE:
                raise
            raise SqlConsoleError(
                f"the store {dsn!r} is held by a running collector, and asking it at "
                f"{endpoint!r} failed ({exc}); pass --endpoint URL of that collector, or set "
                f"{env.AGENTLEDGER_ENDPOINT}",
                EXIT_UNREACHABLE,
            ) from exc
    try:
        opened = Store(dsn)
    except StoreError as exc:
        raise SqlConsoleError(str(exc), EXIT_UNREACHABLE) from exc
    try:
        opened.migrate()  # an older store may lack the views
        return run_read_only(opened, sql, max_rows)
    except AdhocSqlError as exc:
        raise SqlConsoleError(str(exc), EXIT_REFUSED) from exc
    finally:
        opened.close()


def store_is_held(directory: Path) -> bool:
    """Whether another process has the chDB directory open.

    ClickHouse holds an exclusive ``flock`` on the directory's ``status`` file while it runs;
    probing that lock avoids opening chDB, which prints its own error when it cannot.
    """
    status = directory / "status"
    if not status.exists():
        return False
    try:
        import fcntl
    except ImportError:  # not a POSIX system: let opening the store tell
        return False
    with status.open("rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def default_endpoint() -> str:
    """The collector's URL from the environment, as the other client commands read it."""
    return os.environ.get(env.AGENTLEDGER_ENDPOINT) or os.environ.get(
        env.OTEL_EXPORTER_OTLP_ENDPOINT, env.DEFAULT_ENDPOINT
    )


def query_endpoint(endpoint: str, sql: str, max_rows: int) -> SqlResult:
    """Ask a collector's ``POST /api/v1/sql``; money comes back as exact decimals."""
    url = endpoint.rstrip("/") + SQL_PATH
    body = json.dumps({"sql": sql, "max_rows": max_rows}).encode("utf-8")
    # The route needs an admin key of project "*" when the collector has access keys.
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    try:
        key = credentials.api_key()
    except ValueError as exc:
        raise SqlConsoleError(f"{env.AGENTLEDGER_API_KEY}: {exc}", EXIT_REFUSED) from exc
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            payload = json.loads(response.read(), parse_float=Decimal)
    except urllib.error.HTTPError as exc:
        raise SqlConsoleError(_error_text(exc), EXIT_REFUSED) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SqlConsoleError(
            f"cannot reach the collector at {url!r}: {exc}", EXIT_UNREACHABLE
        ) from exc
    return SqlResult.model_validate(payload)


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(exc.read()).get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("msg", detail))
    return f"the collector answered {exc.code}: {detail or exc.reason}"


def format_table(result: SqlResult, *, max_width: int = 60) -> str:
    """The result as a plain-text table: header, rule, rows, and a row count."""
    header = list(result.columns)
    lines = [[_cell_text(value, max_width) for value in row] for row in result.rows]
    widths = [len(name) for name in header]
    for line in lines:
        widths = [max(width, len(cell)) for width, cell in zip(widths, line, strict=True)]
    numeric = [_is_numeric(type_name) for type_name in result.types]

    def render(cells: list[str]) -> str:
        parts = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    text = [render(header), "  ".join("-" * width for width in widths)]
    text.extend(render(line) for line in lines)
    noun = "row" if len(lines) == 1 else "rows"
    more = " (truncated: add a LIMIT or raise --max-rows)" if result.truncated else ""
    text.append(f"({len(lines)} {noun}{more})")
    return "\n".join(text)


def _cell_text(value: Any, max_width: int) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, Decimal):
        text = format(value.normalize(), "f") if value.is_finite() else str(value)
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, list | dict):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def _is_numeric(type_name: str) -> bool:
    bare = type_name.removeprefix("Nullable(").removeprefix("LowCardinality(")
    return bare.startswith(("Int", "UInt", "Float", "Decimal"))
