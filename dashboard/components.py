"""Building blocks of the pages: cards, tables, sections and empty states.

They take values already formatted (``formatting.Shown``) and only arrange them; the CSS
classes they use are defined in ``style``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import plotly.graph_objects as go
from dash import dcc, html
from dash.development.base_component import Component

from agentledger.dashboard.formatting import Shown


@dataclass(frozen=True)
class Kpi:
    """One headline card: a label, its value and, on the overview, its trend per day."""

    label: str
    shown: Shown
    trend: go.Figure | None = None


# Hover shows each day's value; nothing else of Plotly's chrome fits on a card.
SPARK_CONFIG: dcc.Graph.Config = {"displayModeBar": False, "responsive": True}


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False
    hint: str | None = None


@dataclass(frozen=True)
class Table:
    """A table of formatted cells, one ``Shown`` per column in each row."""

    columns: list[Column]
    rows: list[list[Shown]] = field(default_factory=list)

    def column(self, label: str) -> list[Shown]:
        """The cells of the column named ``label``, top to bottom."""
        index = [column.label for column in self.columns].index(label)
        return [row[index] for row in self.rows]


def value(shown: Shown, *, class_name: str = "") -> Component:
    """A formatted value: a link when it has one, with its note or exact value on hover."""
    parts = [class_name]
    if shown.undefined:
        parts.append("al-undefined")
    if shown.tone is not None:
        parts.append(f"al-badge al-badge-{shown.tone}")
    classes = " ".join(part for part in parts if part)
    if shown.href is not None:
        return dcc.Link(shown.text, href=shown.href, title=shown.tooltip, className=classes)
    return html.Span(shown.text, title=shown.tooltip, className=classes or None)


def kpi_cards(kpis: Sequence[Kpi]) -> Component:
    return html.Div([_kpi_card(kpi) for kpi in kpis], className="al-cards")


def _kpi_card(kpi: Kpi) -> Component:
    shown = kpi.shown
    children: list[Component] = [html.Div(kpi.label, className="al-card-label")]
    if shown.note:
        # The note shows under the value, so the value's tooltip gives the exact figure.
        plain = Shown(shown.text, exact=shown.exact, href=shown.href, tone=shown.tone)
        children.append(value(plain, class_name="al-card-value"))
        children.append(html.Div(shown.note, className="al-card-note"))
    else:
        children.append(value(shown, class_name="al-card-value"))
    if kpi.trend is not None:
        children.append(dcc.Graph(figure=kpi.trend, config=SPARK_CONFIG, className="al-spark"))
    return html.Div(children, className="al-card")


def table(model: Table, *, compact: bool = False) -> Component:
    """A table; ``compact`` draws it with less padding and smaller text, for wide tables."""
    head = html.Thead(
        html.Tr(
            [
                html.Th(
                    column.label, title=column.hint, className="num" if column.numeric else None
                )
                for column in model.columns
            ]
        )
    )
    body = html.Tbody(
        [
            html.Tr(
                [
                    _cell(cell, numeric=column.numeric)
                    for column, cell in zip(model.columns, row, strict=True)
                ]
            )
            for row in model.rows
        ]
    )
    classes = "al-table al-table-compact" if compact else "al-table"
    return html.Div(
        html.Table([head, body], className=classes),
        className="al-table-wrap",
    )


def _cell(shown: Shown, *, numeric: bool) -> Component:
    # A plain value is the cell itself: every extra component per cell costs the browser
    # time on each update of a large table.
    classes = ["num"] if numeric else []
    if shown.href is not None or shown.tone is not None:
        return html.Td(value(shown), className=" ".join(classes) or None)
    if shown.undefined:
        classes.append("al-undefined")
    return html.Td(shown.text, title=shown.tooltip, className=" ".join(classes) or None)


def section(title: str, children: Sequence[Component] | Component, *, aside: str = "") -> Component:
    header: list[Component] = [html.H2(title)]
    if aside:
        header.append(html.P(aside, className="al-section-aside"))
    return html.Section(
        [html.Div(header, className="al-section-head"), html.Div(children)],
        className="al-section",
    )


def empty_state(title: str, *lines: str | Component) -> Component:
    """A calm box that says why there is nothing to show and what to do about it."""
    body = [html.P(line) if isinstance(line, str) else line for line in lines]
    return html.Div([html.H3(title), *body], className="al-empty")


def undefined_legend() -> Component:
    return html.P(
        [
            "— means undefined; hover over it for the reason. ",
            "≥ marks a cost that leaves out unpriced calls.",
        ],
        className="al-legend",
    )


def run_list(
    table_component: Component, line: str, newer: str | None, older: str | None
) -> Component:
    """A page of the run list with its position and links to the pages beside it."""
    links = [
        dcc.Link("← Newer", href=newer, className="al-button") if newer else _disabled("← Newer"),
        dcc.Link("Older →", href=older, className="al-button") if older else _disabled("Older →"),
    ]
    return html.Div(
        [
            table_component,
            html.Div(
                [
                    html.Span(line, className="al-pager-line"),
                    html.Div(links, className="al-pager-links"),
                ],
                className="al-pager",
            ),
        ]
    )


def _disabled(text: str) -> Component:
    return html.Span(text, className="al-button al-button-disabled")
