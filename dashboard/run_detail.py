"""The page of one run: its totals, its attempts and calls as a waterfall, and a call table."""

from __future__ import annotations

from dash import dcc, html
from dash.development.base_component import Component

from agentledger.dashboard import components, figures, formatting, layout, overview
from agentledger.dashboard.components import Column, Kpi, Table
from agentledger.dashboard.filters import Filters
from agentledger.dashboard.formatting import Shown
from agentledger.dashboard.routes import overview_href
from agentledger.schemas.api import Attempt, Call, LedgerReader, RunDetail

# Sixteen columns that never wrap were wider than the page below about 1,300 pixels, so the
# table scrolled sideways and the error column, last, showed as a cut-off "Erro…". The
# error now follows the call it belongs to, the cost source moved into the cost's tooltip,
# and the table is drawn compact (``al-table-compact``).
CALL_COLUMNS = [
    Column("Step"),
    Column("Attempt", numeric=True),
    Column("Tier"),
    Column("Used", hint="whether this attempt's output was used"),
    Column("Kind"),
    Column("Model / tool"),
    Column("Error", hint="the error type of a failed call"),
    Column("Starts at", numeric=True, hint="time since the run started"),
    Column("Duration", numeric=True),
    Column("Input", numeric=True, hint="input tokens, cached ones included"),
    Column("Cached", numeric=True, hint="input tokens read from the cache"),
    Column("Output", numeric=True, hint="output tokens, reasoning included"),
    Column("Reasoning", numeric=True),
    Column("Re-ingested", numeric=True, hint="input tokens already processed earlier in the run"),
    Column("Cost", numeric=True, hint="hover for the exact cost and where it came from"),
]


def run_kpis(run: RunDetail) -> list[Kpi]:
    return [
        Kpi("Outcome", overview.outcome(run.outcome)),
        Kpi("Cost", overview.run_cost(run)),
        Kpi("Calls", Shown(formatting.count_text(run.calls))),
        Kpi("Input tokens", Shown(formatting.count_text(run.input_tokens))),
        Kpi("Output tokens", Shown(formatting.count_text(run.output_tokens))),
        Kpi("Duration", Shown(formatting.duration(run.end_time - run.start_time))),
        Kpi("Token budget", _token_budget(run.budget_tokens)),
        Kpi("Cost budget", formatting.usd(run.budget_usd, reason="no cost budget set")),
    ]


def _token_budget(budget_tokens: int | None) -> Shown:
    if budget_tokens is None:
        return formatting.undefined("no token budget set")
    return Shown(formatting.count_text(budget_tokens))


def calls_table(run: RunDetail) -> Table:
    """Every call of the run in the waterfall's order, with the attempt it belongs to."""
    lines: list[list[Shown]] = []
    for attempt in sorted(run.attempts, key=lambda item: item.start_time):
        for call in sorted(attempt.calls, key=lambda item: item.start_time):
            lines.append(_call_line(run, call, attempt))
    for call in sorted(run.calls_outside_steps, key=lambda item: item.start_time):
        lines.append(_call_line(run, call, None))
    return Table(CALL_COLUMNS, lines)


def _call_line(run: RunDetail, call: Call, attempt: Attempt | None) -> list[Shown]:
    started = formatting.as_utc(call.start_time) - formatting.as_utc(run.start_time)
    if attempt is None:
        step = [Shown("(outside steps)"), Shown(""), Shown(""), Shown("")]
    else:
        step = [
            Shown(attempt.step_name),
            Shown(str(attempt.attempt)),
            Shown(attempt.tier or "(no tier)"),
            Shown("yes") if attempt.accepted else Shown("discarded", tone="bad"),
        ]
    is_tool = call.kind == "tool"
    # A tool call never has tokens: that is not an unknown figure, so it reads as blank.
    token_reason = "not reported"

    def token_cell(count: int | None) -> Shown:
        if is_tool and count is None:
            return Shown("")
        return formatting.tokens(count, reason=token_reason)

    return [
        *step,
        Shown(call.kind or "call"),
        Shown(figures.call_subject(call)),
        Shown(call.error_type, tone="bad") if call.error_type else Shown(""),
        Shown("+" + formatting.duration(started)),
        Shown(formatting.duration(call.end_time - call.start_time)),
        token_cell(call.input_tokens),
        token_cell(call.cached_tokens),
        token_cell(call.output_tokens),
        token_cell(call.reasoning_tokens),
        token_cell(call.reingested_tokens),
        _call_cost(call),
    ]


def _call_cost(call: Call) -> Shown:
    """The cost of a call; its tooltip gives the exact figure and its source."""
    cost = formatting.usd(call.cost_usd, reason="no price known for this model")
    if cost.undefined or not call.cost_source:
        return cost
    return Shown(cost.text, exact=f"{cost.exact} from {call.cost_source}", tone=cost.tone)


def run_page(reader: LedgerReader, run_id: str, prefix: str, filters: Filters) -> Component:
    """Callback output of the page of ``run_id``: one reader call."""
    back = dcc.Link("← All runs", href=overview_href(prefix, filters), className="al-back")
    run = reader.run(run_id, project=filters.project)
    if run is None:
        return html.Div(
            [
                back,
                components.empty_state(
                    "Run not found",
                    f"No run with id {run_id!r} is stored in project {filters.project!r}.",
                ),
            ]
        )

    title = html.Div(
        [
            back,
            html.H1(["Run ", html.Code(run.run_id)], className="al-title"),
            html.P(
                f"{run.workflow or '(no workflow)'} · started "
                f"{formatting.timestamp(run.start_time)}",
                className="al-subtitle",
            ),
        ]
    )
    return html.Div(
        [
            title,
            components.kpi_cards(run_kpis(run)),
            components.section(
                "Attempts and calls",
                dcc.Graph(
                    figure=figures.waterfall(run),
                    config=layout.GRAPH_CONFIG,
                    id="run-waterfall",
                ),
                aside="Each bar spans a step attempt or a call; hover for tokens and cost.",
            ),
            components.section(
                "Calls",
                [
                    components.table(calls_table(run), compact=True),
                    components.undefined_legend(),
                ],
            ),
        ]
    )
