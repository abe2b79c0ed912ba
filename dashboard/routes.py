"""The pages of the dashboard and the links between them.

Paths are relative to the prefix under which the browser sees the dashboard (``/dashboard/``
when the collector mounts it): the overview at the prefix itself, one page per run at
``runs/<run id>``. Filters travel along in the query string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote

from agentledger.dashboard.filters import Filters

RUNS_SEGMENT = "runs"
BUDGETS_SEGMENT = "budgets"
STEPS_SEGMENT = "steps"
REINGESTION_SEGMENT = "reingestion"
RETRIES_SEGMENT = "retries"
TAILS_SEGMENT = "tails"
ROUTING_SEGMENT = "routing"
SQL_SEGMENT = "sql"
#: The analysis pages, by the path segment that opens each.
ANALYSIS_PAGES = (
    STEPS_SEGMENT, REINGESTION_SEGMENT, RETRIES_SEGMENT, RUNS_SEGMENT, TAILS_SEGMENT,
    ROUTING_SEGMENT,
)
#: The header's links: label and path segment.
PAGES = (
    ("Overview", ""),
    ("Steps × tiers", STEPS_SEGMENT),
    ("Re-ingestion", REINGESTION_SEGMENT),
    ("Retries", RETRIES_SEGMENT),
    ("Runs", RUNS_SEGMENT),
    ("Tails", TAILS_SEGMENT),
    ("Routing", ROUTING_SEGMENT),
    ("Budgets", BUDGETS_SEGMENT),
    ("SQL", SQL_SEGMENT),
)


@dataclass(frozen=True)
class Route:
    """Which page a path asks for; ``run_id`` for a run page, ``path`` for an unknown one."""

    page: Literal["overview", "run", "budgets", "sql", "analysis", "missing"]
    run_id: str | None = None
    path: str = ""


def resolve(prefix: str, pathname: str | None) -> Route:
    """The page that ``pathname`` (as the browser sees it, prefix included) asks for."""
    path = pathname or prefix
    if path.startswith(prefix):
        path = path[len(prefix) :]
    elif path + "/" == prefix:
        path = ""
    path = path.strip("/")

    if path == "":
        return Route("overview")
    head, _, rest = path.partition("/")
    if head == RUNS_SEGMENT and rest:
        return Route("run", run_id=unquote(rest))
    if path == BUDGETS_SEGMENT:
        return Route("budgets")
    if path == SQL_SEGMENT:
        return Route("sql")
    if path in ANALYSIS_PAGES:
        return Route("analysis", path=path)
    return Route("missing", path=path)


def overview_href(prefix: str, filters: Filters) -> str:
    return prefix + filters.to_search()


def budgets_href(prefix: str, filters: Filters) -> str:
    return f"{prefix}{BUDGETS_SEGMENT}{filters.window().to_search()}"


def run_href(prefix: str, run_id: str, filters: Filters) -> str:
    # The run list's offset goes along so that "back" returns to the same page of runs.
    return f"{prefix}{RUNS_SEGMENT}/{quote(run_id, safe='')}{filters.to_search()}"


def page_href(prefix: str, segment: str, filters: Filters) -> str:
    """An analysis page (``steps``, ``runs``...) with the filters."""
    return f"{prefix}{segment}{filters.to_search()}"
