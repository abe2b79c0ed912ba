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


@dataclass(frozen=True)
class Route:
    """Which page a path asks for; ``run_id`` for a run page, ``path`` for an unknown one."""

    page: Literal["overview", "run", "missing"]
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
    return Route("missing", path=path)


def overview_href(prefix: str, filters: Filters) -> str:
    return prefix + filters.to_search()


def run_href(prefix: str, run_id: str, filters: Filters) -> str:
    # The run list's offset goes along so that "back" returns to the same page of runs.
    return f"{prefix}{RUNS_SEGMENT}/{quote(run_id, safe='')}{filters.to_search()}"
