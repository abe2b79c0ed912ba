"""The ad-hoc SQL page: one read-only query over the store's tables and views, its answer as
a table that downloads as CSV.

The query goes through the reader's ``sql``, the same read-only path as ``POST /api/v1/sql``:
a text that is not one ``SELECT`` or ``WITH`` query is refused before it runs, and what runs,
runs with ClickHouse's ``readonly = 1``. SQL cannot be limited to one project, so once access
keys exist only an administrator of every project may use it; the collector's reader checks
that on each call, and the page asks first only to say so instead of offering a form.
"""

from __future__ import annotations

import json
import logging
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import dash
from dash import Input, Output, State, dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import components, csv_export, layout
from agentledger.dashboard.components import Column, Table
from agentledger.dashboard.formatting import Shown, undefined
from agentledger.schemas.analysis import (
    SQL_MAX_ROWS,
    SqlForbiddenError,
    SqlNotReadOnlyError,
    SqlRefusedError,
)
from agentledger.schemas.api import SqlResult

logger = logging.getLogger(__name__)

TEXT = "sql-text"
RUN = "sql-run"
RESULT = "sql-result"
#: Rows drawn in the page; the CSV holds every row of the answer (up to ``SQL_MAX_ROWS``).
SHOWN_ROWS = 500
EXAMPLE = """-- One read-only SELECT over the views llm_calls and runs (docs/metrics.md).
SELECT workflow, count() AS runs, countIf(correct) AS correct_runs,
       sum(cost_usd) AS spend_usd
FROM runs
GROUP BY workflow
ORDER BY spend_usd DESC"""
FORBIDDEN_TITLE = "Only administrators may run SQL here"
REFUSED_TITLE = "The query was not run"
FAILED_TITLE = "ClickHouse did not answer the query"
UNAVAILABLE_TITLE = "SQL is not available here"
# ClickHouse type names whose values read right-aligned.
_NUMERIC_TYPES = ("Int", "UInt", "Float", "Decimal")


def offered(reader: Any) -> bool:
    """Whether the reader runs ad-hoc SQL at all (the collector's does)."""
    return callable(getattr(reader, "sql", None)) and callable(getattr(reader, "sql_refusal", None))


def refusal(reader: Any) -> str | None:
    """Why this viewer may not run SQL, or None when they may."""
    reason = reader.sql_refusal()
    return None if reason is None else str(reason)


def page(reader: Any) -> Component:
    """The page: the form for an administrator, a notice for anyone else."""
    title = html.H1("SQL", className="al-title")
    if not offered(reader):
        return html.Div(
            [title, components.empty_state(UNAVAILABLE_TITLE, "This reader runs no ad-hoc SQL.")]
        )
    reason = refusal(reader)
    if reason is not None:
        return html.Div([title, forbidden(reason)])
    return html.Div(
        [
            title,
            html.P(
                [
                    "One read-only ",
                    html.Code("SELECT"),
                    " (or ",
                    html.Code("WITH … SELECT"),
                    ") over every project's data; views ",
                    html.Code("llm_calls"),
                    " and ",
                    html.Code("runs"),
                    " are described in docs/metrics.md. Anything that writes is refused.",
                ],
                className="al-subtitle",
            ),
            components.section(
                "Query",
                [
                    dcc.Textarea(
                        id=TEXT,
                        value=EXAMPLE,
                        spellCheck=False,
                        className="al-sql-text",
                        rows=8,
                    ),
                    html.Div(
                        html.Button("Run", id=RUN, n_clicks=0, className="al-button al-primary"),
                        className="al-sql-tools",
                    ),
                ],
                aside=f"At most {SQL_MAX_ROWS:,} rows are returned.",
            ),
            html.Div(id=RESULT),
        ]
    )


def forbidden(reason: str) -> Component:
    return components.empty_state(
        FORBIDDEN_TITLE,
        "SQL reads every project, so once access keys exist it needs an admin key of "
        "project '*'. Nothing was run.",
        f"The collector says: {reason}.",
    )


def run(reader: Any, sql: str | None) -> Component:
    """Callback output of the run button: the answer, or why there is none."""
    if not sql or not sql.strip():
        return _notice(REFUSED_TITLE, "The query is empty: write one SELECT statement.")
    try:
        result = reader.sql(sql, SQL_MAX_ROWS)
    except SqlForbiddenError as exc:
        return forbidden(str(exc))
    except SqlNotReadOnlyError as exc:
        return _notice(REFUSED_TITLE, str(exc))
    except SqlRefusedError as exc:
        return _notice(FAILED_TITLE, str(exc))
    return answer(SqlResult.model_validate(result))


def _notice(title: str, message: str) -> Component:
    return html.Div(
        [html.H3(title), html.Pre(message, className="al-sql-error")],
        className="al-sql-notice",
        role="alert",
    )


def answer(result: SqlResult) -> Component:
    """The rows of ``result`` as a table, with a CSV of all of them."""
    names = unique_names(result.columns)
    count = len(result.rows)
    line = f"{count:,} row{'s' if count != 1 else ''}"
    if result.truncated:
        line += f"; the answer had more, only the first {count:,} are here"
    if count > SHOWN_ROWS:
        line += f"; the table shows the first {SHOWN_ROWS:,}, the CSV holds all"
    if not result.columns:
        return html.P(line, className="al-pager-line")

    columns = [
        Column(name, numeric=_numeric(kind), hint=kind)
        for name, kind in zip(result.columns, result.types, strict=False)
    ]
    lines = [[cell(value) for value in row] for row in result.rows[:SHOWN_ROWS]]
    records = [
        {name: record_value(value) for name, value in zip(names, row, strict=True)}
        for row in result.rows
    ]
    table = components.table(Table(columns, lines))
    return html.Div(
        [
            html.P(line, className="al-pager-line"),
            csv_export.downloadable("sql", table, records),
        ],
        className="al-section",
    )


def unique_names(columns: list[str]) -> list[str]:
    """Column names for the CSV header; a repeated name gets ``_2``, ``_3``... so that no
    column is lost (``SELECT 1, 1`` names both columns ``1``)."""
    seen: dict[str, int] = {}
    names = []
    for name in columns:
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def _numeric(kind: str) -> bool:
    bare = kind.removeprefix("Nullable(").removeprefix("LowCardinality(")
    return bare.startswith(_NUMERIC_TYPES)


def cell(value: Any) -> Shown:
    """A value as ClickHouse gave it, unrounded: the page is for checking numbers by hand."""
    if value is None:
        return Shown("NULL")
    if isinstance(value, float) and not math.isfinite(value):
        return undefined(f"ClickHouse returned {value!r}, not a number")
    if isinstance(value, Decimal):
        return Shown(format(value, "f"))
    if isinstance(value, datetime | date):
        return Shown(value.isoformat())
    if isinstance(value, list | dict):
        return Shown(json.dumps(value, default=str))
    return Shown(str(value))


def record_value(value: Any) -> Any:
    """A value for the CSV store: JSON-ready, exact, empty for NULL and for non-numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return value


def validation_layout() -> list[Component]:
    """The ids of the page's callback, for Dash's id check."""
    return [dcc.Textarea(id=TEXT), html.Button(id=RUN), html.Div(id=RESULT)]


def register(app: dash.Dash, reader: Any) -> None:
    """The run button's callback. The reader, not this page, enforces who may run SQL."""

    @app.callback(
        Output(RESULT, "children"),
        Input(RUN, "n_clicks"),
        State(TEXT, "value"),
        prevent_initial_call=True,
    )
    def _run(clicks: int | None, sql: str | None) -> Any:
        if not clicks:
            return dash.no_update
        try:
            return run(reader, sql)
        except Exception:  # a store that is down: log it and say so, never a callback error
            logger.exception("dashboard: ad-hoc sql failed; showing a notice instead")
            return layout.read_failure()
