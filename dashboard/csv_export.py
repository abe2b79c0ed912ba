"""CSV downloads of the dashboard's tables.

Each table carries the API records it was drawn from in a ``dcc.Store``; one callback, for
every table, turns them into a CSV file when its button is pressed. The CSV holds the
exact API values (full decimals, ISO times, empty for undefined), not the rounded text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import dash
from dash import MATCH, Input, Output, State, dcc, html
from dash.development.base_component import Component

BUTTON = "csv-button"
DATA = "csv-data"
DOWNLOAD = "csv-download"


def to_csv(records: Sequence[dict[str, Any]]) -> str:
    """Records as CSV with a header of their keys, in the first record's order."""
    out = io.StringIO()
    if not records:
        return ""
    columns = list(records[0])
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _cell(record.get(key)) for key in columns})
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return str(value)
    return value


def downloadable(name: str, table: Component, records: Sequence[dict[str, Any]]) -> Component:
    """``table`` with a "Download CSV" button for ``records`` (JSON-ready API records)."""
    return html.Div(
        [
            html.Div(
                [
                    html.Button(
                        "Download CSV",
                        id={"type": BUTTON, "table": name},
                        className="al-button al-csv",
                        n_clicks=0,
                    ),
                    dcc.Store(id={"type": DATA, "table": name}, data=list(records)),
                    dcc.Download(id={"type": DOWNLOAD, "table": name}),
                ],
                className="al-table-tools",
            ),
            table,
        ]
    )


def register(app: dash.Dash) -> None:
    """The one callback that answers every table's button."""

    @app.callback(
        Output({"type": DOWNLOAD, "table": MATCH}, "data"),
        Input({"type": BUTTON, "table": MATCH}, "n_clicks"),
        State({"type": DATA, "table": MATCH}, "data"),
        State({"type": BUTTON, "table": MATCH}, "id"),
        prevent_initial_call=True,
    )
    def _download(clicks: int | None, records: list[dict[str, Any]] | None, ident: Any) -> Any:
        if not clicks:
            return dash.no_update
        return dcc.send_string(to_csv(records or []), f"agentledger-{ident['table']}.csv")
