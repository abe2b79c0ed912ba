"""The filters that a page shares, kept in the URL query string.

The query string of a dashboard page uses the parameter names and meanings of the query API
(``workflow``, ``since``, ``until``, ``project``, and ``offset`` for the run list), so that the
same string asks the API for the numbers that the page shows. The window is
``since <= run start < until``, in UTC; the date picker shows ``until`` as the last day included.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import parse_qs, urlencode

from agentledger.schemas.analysis import RunSearchQuery, SliceQuery
from agentledger.schemas.api import GroupKey, MetricsQuery, RunsQuery

DEFAULT_PROJECT = "default"
RUNS_PER_PAGE = 25


@dataclass(frozen=True)
class Filters:
    """Workflow, model, tier, time window and run-list offset of a page; ``step`` and
    ``search`` narrow the run list."""

    workflow: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    project: str = DEFAULT_PROJECT
    offset: int = 0
    model: str | None = None
    tier: str | None = None
    step: str | None = None
    search: str | None = None

    def metrics_query(self, group_by: list[GroupKey]) -> MetricsQuery:
        return MetricsQuery(
            group_by=group_by,
            project=self.project,
            workflow=self.workflow,
            model=self.model,
            tier=self.tier,
            since=self.since,
            until=self.until,
        )

    def slice_query(self) -> SliceQuery:
        """The filters of the analysis API (``GET /api/v1/tails`` and its siblings)."""
        return SliceQuery(
            project=self.project,
            workflow=self.workflow,
            model=self.model,
            tier=self.tier,
            since=self.since,
            until=self.until,
        )

    def run_search_query(self, limit: int = RUNS_PER_PAGE) -> RunSearchQuery:
        return RunSearchQuery(
            **self.slice_query().model_dump(),
            step=self.step,
            search=self.search,
            limit=limit,
            offset=self.offset,
        )

    def runs_query(self, limit: int = RUNS_PER_PAGE) -> RunsQuery:
        return RunsQuery(
            project=self.project,
            workflow=self.workflow,
            since=self.since,
            until=self.until,
            limit=limit,
            offset=self.offset,
        )

    def to_search(self) -> str:
        """The query string, with a leading ``?`` unless empty."""
        params: dict[str, str] = {}
        if self.project != DEFAULT_PROJECT:
            params["project"] = self.project
        if self.workflow is not None:
            params["workflow"] = self.workflow
        for name in ("model", "tier", "step"):
            value = getattr(self, name)
            if value is not None:
                params[name] = value
        if self.since is not None:
            params["since"] = _instant_text(self.since)
        if self.until is not None:
            params["until"] = _instant_text(self.until)
        if self.search:
            params["search"] = self.search
        if self.offset:
            params["offset"] = str(self.offset)
        return "?" + urlencode(params) if params else ""

    def window(self) -> Filters:
        """These filters without the run-list offset: what the metrics depend on."""
        return replace(self, offset=0)

    def with_offset(self, offset: int) -> Filters:
        return replace(self, offset=max(0, offset))

    def picker_dates(self) -> tuple[str | None, str | None]:
        """First and last day included, as the date picker shows them."""
        start = self.since.date().isoformat() if self.since is not None else None
        end = None
        if self.until is not None:
            # until is exclusive: a window ending at midnight ends with the day before.
            end = (self.until - timedelta(microseconds=1)).date().isoformat()
        return start, end


@dataclass(frozen=True)
class Parsed:
    """Filters read from a query string, and what was ignored in it and why."""

    filters: Filters
    problems: tuple[str, ...] = ()


def parse_search(search: str | None) -> Parsed:
    """Read filters from a query string such as ``?workflow=triage&since=2025-01-01``.

    A value that cannot be read is left out and named in ``problems``; it never breaks the page.
    """
    params = {key: values[-1] for key, values in parse_qs((search or "").lstrip("?")).items()}
    problems: list[str] = []

    since = _read_instant(params, "since", problems)
    until = _read_instant(params, "until", problems)
    if since is not None and until is not None and until <= since:
        problems.append(f"ignored until={params['until']!r}: it is not after since")
        until = None

    offset = 0
    if "offset" in params:
        try:
            offset = int(params["offset"])
        except ValueError:
            problems.append(f"ignored offset={params['offset']!r}: not a whole number")
        if offset < 0:
            problems.append(f"ignored offset={params['offset']!r}: negative")
            offset = 0

    filters = Filters(
        workflow=params.get("workflow") or None,
        since=since,
        until=until,
        project=params.get("project") or DEFAULT_PROJECT,
        offset=offset,
        model=params.get("model") or None,
        tier=params.get("tier") or None,
        step=params.get("step") or None,
        search=params.get("search") or None,
    )
    return Parsed(filters, tuple(problems))


def from_controls(
    search: str | None,
    workflow: str | None,
    start_date: str | None,
    end_date: str | None,
    *,
    model: str | None = None,
    tier: str | None = None,
) -> Filters:
    """The filters after the user changed a control; the run list starts over, and keeps
    its step and search text.

    ``end_date`` is the last day included, so the window ends at the next midnight.
    """
    current = parse_search(search).filters
    since = _midnight(start_date)
    last_day = _midnight(end_date)
    until = last_day + timedelta(days=1) if last_day is not None else None
    return Filters(
        workflow=workflow or None,
        since=since,
        until=until,
        project=current.project,
        offset=0,
        model=model or None,
        tier=tier or None,
        step=current.step,
        search=current.search,
    )


def _read_instant(params: dict[str, str], name: str, problems: list[str]) -> datetime | None:
    text = params.get(name)
    if not text:
        return None
    try:
        return parse_instant(text)
    except ValueError:
        problems.append(f"ignored {name}={text!r}: not an ISO date or date-time")
        return None


def parse_instant(text: str) -> datetime:
    """An ISO date (midnight UTC) or date-time; one without a zone is UTC."""
    moment = datetime.fromisoformat(text.strip().replace(" ", "+"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _midnight(picked: str | None) -> datetime | None:
    if not picked:
        return None
    # The picker may send "2025-01-07" or "2025-01-07T00:00:00"; the day is what counts.
    day = date.fromisoformat(picked[:10])
    return datetime.combine(day, time(), tzinfo=UTC)


def _instant_text(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    if moment.time() == time():
        return moment.date().isoformat()
    return moment.isoformat().replace("+00:00", "Z")
