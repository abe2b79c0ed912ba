"""Alert rules: read from a TOML file, evaluated on a schedule, their state kept in ClickHouse.

Rules (``[[rule]]`` tables; ``docs/alerts.md`` has the file format):

==================  ======================================================  ===========
kind                breaches when, for each workflow (or the one named)      alert per
==================  ======================================================  ===========
``run_tokens``      a run's input + output tokens > threshold                run
``run_cost``        a run's known cost (USD) > threshold                     run
``workflow_spend``  the known cost of the runs of the window > threshold     workflow
``p95_run_cost``    the 95th percentile of run cost in the window > thr.     workflow
``cost_per_correct`` cost per correct outcome in the window > threshold      workflow
``unpriced_calls``  model calls without a price in the window > threshold    workflow
==================  ======================================================  ===========

Every figure is the one the API gives (``docs/metrics.md``): the windowed figures come from
``StoreReader.metrics`` grouped by workflow with ``since = now - window``, the per-run ones
from the run totals of ``budget_queries``. Per-run rules look at the runs that started
within the window.

An alert is a rule and its subject (a run or a workflow). It is **firing** from the first
evaluation that finds the breach, and **resolved** at the first that no longer does; a
per-run alert never resolves (a run's spend does not go down). Each transition is one row of
the ``alerts`` table, written before it is sent, so a breach is notified once, and a restart
reads the state back instead of firing again. A transition whose notification failed is
sent again, with the same idempotency key, at later evaluations.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import threading
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agentledger.collector.budget_queries import run_totals_sql, run_where
from agentledger.collector.notify import Channel, Delivery, Notification, Notifier
from agentledger.collector.queries import StoreReader
from agentledger.collector.rollups import rollups_of
from agentledger.collector.settings import CollectorSettings, SettingsError
from agentledger.collector.store import Store
from agentledger.schemas.api import MetricsQuery, MetricsRow

logger = logging.getLogger(__name__)

RuleKind = Literal[
    "run_tokens", "run_cost", "workflow_spend", "p95_run_cost", "cost_per_correct", "unpriced_calls"
]
PER_RUN: Final = frozenset({"run_tokens", "run_cost"})
UNITS: Final = {
    "run_tokens": "tokens",
    "run_cost": "usd",
    "workflow_spend": "usd",
    "p95_run_cost": "usd",
    "cost_per_correct": "usd",
    "unpriced_calls": "calls",
}
FIRING: Final = "firing"
RESOLVED: Final = "resolved"
#: Sending a transition is retried at each evaluation until this many attempts failed.
MAX_DELIVERY_ATTEMPTS: Final = 20
DEFAULT_WINDOW: Final = "1d"

ALERT_COLUMNS: Final = (
    "project",
    "alert_key",
    "idempotency_key",
    "rule",
    "kind",
    "state",
    "workflow",
    "run_id",
    "unit",
    "threshold",
    "actual",
    "window_seconds",
    "message",
    "fired_at",
    "changed_at",
    "delivered",
    "attempts",
)

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SECONDS_PER: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_MONEY: Final = Decimal("1e-12")


def parse_duration(value: str | int) -> int:
    """Seconds in ``"90s"``, ``"15m"``, ``"24h"``, ``"7d"``, ``"2w"`` or a plain integer."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) == 0:
        raise ValueError(
            f"window must be a positive duration such as '90s', '15m', '24h', '7d' or a number "
            f"of seconds, got {value!r}"
        )
    return int(match.group(1)) * _SECONDS_PER[match.group(2)]


class Rule(BaseModel):
    """One ``[[rule]]`` of the alerts file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: RuleKind
    threshold: Decimal = Field(ge=0)
    #: Only this workflow; every workflow (one alert each) when omitted.
    workflow: str | None = None
    #: Windowed rules look at the runs that started this long before the evaluation.
    window: str | int = DEFAULT_WINDOW
    project: str = "default"

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str | int) -> str | int:
        parse_duration(value)
        return value

    @property
    def window_seconds(self) -> int:
        return parse_duration(self.window)

    @property
    def unit(self) -> str:
        return UNITS[self.kind]


class AlertsConfig(BaseModel):
    """The alerts file: how often to evaluate, the channels and the rules."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    interval_seconds: float = Field(default=60.0, gt=0)
    channels: list[Channel] = Field(default_factory=list, alias="channel")
    rules: list[Rule] = Field(default_factory=list, alias="rule")

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"rule names must be unique, {rule.name!r} appears twice")
            seen.add(rule.name)
        return rules


def load_config(path: Path) -> AlertsConfig:
    """Read and check an alerts file.

    Raises:
        SettingsError: the file cannot be read, is not TOML, or has an invalid entry; the
            message names the file, the entry and the offending value.
    """
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise SettingsError(f"alerts file {str(path)!r} cannot be read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"alerts file {str(path)!r} is not valid TOML: {exc}") from exc
    try:
        return AlertsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '(file)'}: {error['msg']}"
            f" (got {error.get('input')!r})"
            for error in exc.errors()
        )
        raise SettingsError(f"alerts file {str(path)!r} is invalid: {problems}") from exc


@dataclass(frozen=True, slots=True)
class Finding:
    """A breach that a rule finds now."""

    rule: Rule
    workflow: str
    run_id: str
    actual: Decimal | None
    message: str

    @property
    def alert_key(self) -> str:
        return alert_key(self.rule.name, self.workflow, self.run_id, self.rule.kind)


def alert_key(rule: str, workflow: str, run_id: str, kind: str) -> str:
    """One alert per rule and subject: the run for per-run rules, else the workflow."""
    if kind in PER_RUN:
        return f"{rule}|run|{run_id}"
    return f"{rule}|workflow|{workflow}"


def idempotency_key(project: str, key: str, state: str, fired_at: datetime | None) -> str:
    """The same for every delivery of one transition, different for every other one.

    A per-run alert fires once ever, so its key leaves out the time (``fired_at`` None): two
    evaluators that both found the breach by mistake still send the same key.
    """
    moment = fired_at.isoformat() if fired_at is not None else ""
    text = f"{project}\n{key}\n{state}\n{moment}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Transition:
    """One row of the ``alerts`` table."""

    project: str
    alert_key: str
    idempotency_key: str
    rule: str
    kind: str
    state: str
    workflow: str
    run_id: str
    unit: str
    threshold: Decimal
    actual: Decimal | None
    window_seconds: int | None
    message: str
    fired_at: datetime
    changed_at: datetime
    delivered: bool
    attempts: int

    def row(self) -> list[Any]:
        return [getattr(self, column) for column in ALERT_COLUMNS]

    def notification(self) -> Notification:
        return Notification(
            idempotency_key=self.idempotency_key,
            state=FIRING if self.state == FIRING else RESOLVED,
            rule=self.rule,
            kind=self.kind,
            project=self.project,
            workflow=self.workflow,
            run_id=self.run_id,
            unit=self.unit,
            threshold=self.threshold,
            actual=self.actual,
            window_seconds=self.window_seconds,
            fired_at=self.fired_at,
            changed_at=self.changed_at,
            message=self.message,
        )


class AlertEvaluator:
    """Evaluates the rules against the store and notifies their transitions.

    Args:
        store: the store holding spans, outcomes and the ``alerts`` table.
        config: the rules and channels.
        notifier: delivery; one over ``config.channels`` by default.
        clock: the current time (UTC); tests inject a fixed one.
    """

    def __init__(
        self,
        store: Store,
        config: AlertsConfig,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._reader = StoreReader(store)
        self._config = config
        self._notifier = notifier if notifier is not None else Notifier(config.channels)
        self._clock = clock or (lambda: datetime.now(UTC))
        # One evaluation at a time, whoever calls it (the schedule, a test, the API).
        self._lock = threading.Lock()

    @property
    def config(self) -> AlertsConfig:
        return self._config

    def evaluate(self) -> list[Transition]:
        """One pass: find breaches, record new transitions, send what is unsent.

        Returns the transitions recorded by this pass.
        """
        with self._lock:
            now = self._clock()
            recorded: list[Transition] = []
            for project in sorted({rule.project for rule in self._config.rules}):
                recorded.extend(self._evaluate_project(project, now))
            self._deliver_pending(now)
            return recorded

    def close(self) -> None:
        self._notifier.close()

    # --- evaluation ------------------------------------------------------------------------

    def _evaluate_project(self, project: str, now: datetime) -> list[Transition]:
        current = self.current_states(project)
        transitions: list[Transition] = []
        for rule in (r for r in self._config.rules if r.project == project):
            try:
                findings = list(self._find(rule, now))
            except Exception:  # broad: one failing rule must not stop the others
                logger.exception("alert rule not evaluated: rule=%s", rule.name)
                continue
            breaching = {finding.alert_key for finding in findings}
            for finding in findings:
                last = current.get(finding.alert_key)
                if last is None or last.state != FIRING:
                    transitions.append(_firing(project, finding, now))
            if rule.kind in PER_RUN:
                continue
            for key, last in current.items():
                if last.rule == rule.name and last.state == FIRING and key not in breaching:
                    transitions.append(_resolved(last, rule, now))
        if transitions:
            self._store.insert("alerts", [t.row() for t in transitions], ALERT_COLUMNS)
            for transition in transitions:
                logger.info(
                    "alert %s: rule=%s workflow=%s run=%s actual=%s threshold=%s",
                    transition.state,
                    transition.rule,
                    transition.workflow,
                    transition.run_id,
                    transition.actual,
                    transition.threshold,
                )
        return transitions

    def _find(self, rule: Rule, now: datetime) -> Iterable[Finding]:
        rollups_of(self._store).catch_up()
        since = now - timedelta(seconds=rule.window_seconds)
        if rule.kind in PER_RUN:
            return self._find_runs(rule, since)
        if rule.kind == "p95_run_cost":
            return self._find_p95(rule, since)
        return self._find_windowed(rule, since)

    def _find_runs(self, rule: Rule, since: datetime) -> Iterable[Finding]:
        params: dict[str, Any] = {"project": rule.project, "threshold": rule.threshold}
        where = run_where(rule.workflow, since, None, params)
        measure = "toDecimal128(tokens, 0)" if rule.kind == "run_tokens" else "cost_usd"
        rows = self._store.query(
            run_totals_sql(where)
            + f"\nSELECT run_id, workflow, {measure} AS actual FROM run_totals"
            " WHERE actual IS NOT NULL AND actual > {threshold:Decimal(38, 12)}"
            " ORDER BY start_time, run_id",
            params,
        )
        for run_id, workflow, actual in rows:
            figure = _number(Decimal(actual), rule.unit)
            yield Finding(
                rule,
                str(workflow),
                str(run_id),
                Decimal(actual),
                f"run {run_id} of workflow {workflow!r} used {figure}, over the per-run "
                f"ceiling of {_number(rule.threshold, rule.unit)} (rule {rule.name!r})",
            )

    def _find_p95(self, rule: Rule, since: datetime) -> Iterable[Finding]:
        params: dict[str, Any] = {"project": rule.project}
        where = run_where(rule.workflow, since, None, params)
        rows = self._store.query(
            run_totals_sql(where)
            + "\nSELECT workflow, quantileExactInclusive(0.95)(toFloat64(cost_usd)), count()"
            " FROM run_totals WHERE cost_usd IS NOT NULL GROUP BY workflow ORDER BY workflow",
            params,
        )
        for workflow, p95, runs in rows:
            actual = Decimal(repr(float(p95))).quantize(_MONEY)
            if actual > rule.threshold:
                yield Finding(
                    rule,
                    str(workflow),
                    "",
                    actual,
                    f"the 95th percentile of run cost in workflow {workflow!r} over the last "
                    f"{rule.window} is {_number(actual, 'usd')} (of {runs} runs), over "
                    f"{_number(rule.threshold, 'usd')} (rule {rule.name!r})",
                )

    def _find_windowed(self, rule: Rule, since: datetime) -> Iterable[Finding]:
        query = MetricsQuery(
            project=rule.project, group_by=["workflow"], workflow=rule.workflow, since=since
        )
        for row in self._reader.metrics(query):
            actual, what = _windowed_figure(rule, row)
            if actual is None or actual <= rule.threshold:
                continue
            yield Finding(
                rule,
                row.workflow or "",
                "",
                actual,
                f"{what} of workflow {row.workflow!r} over the last {rule.window} is "
                f"{_number(actual, rule.unit)}, over {_number(rule.threshold, rule.unit)} "
                f"(rule {rule.name!r})",
            )

    # --- state -----------------------------------------------------------------------------

    def current_states(self, project: str) -> dict[str, Transition]:
        """The latest transition of every alert of ``project``, by alert key."""
        rows = self._store.query_dicts(
            "SELECT * EXCEPT ingested_at FROM alerts FINAL WHERE project = {project:String}"
            " ORDER BY alert_key, changed_at DESC LIMIT 1 BY alert_key",
            {"project": project},
        )
        return {row["alert_key"]: _transition(row) for row in rows}

    def _deliver_pending(self, now: datetime) -> None:
        rows = self._store.query_dicts(
            "SELECT * EXCEPT ingested_at FROM alerts FINAL"
            " WHERE NOT delivered AND attempts < {limit:UInt32}"
            " ORDER BY changed_at, alert_key",
            {"limit": MAX_DELIVERY_ATTEMPTS},
        )
        for row in rows:
            transition = _transition(row)
            results = self._notifier.send(transition.notification())
            delivered = all(result.ok for result in results)
            attempts = transition.attempts + 1
            self._store.insert(
                "alerts",
                [replace(transition, delivered=delivered, attempts=attempts).row()],
                ALERT_COLUMNS,
            )
            if not delivered and attempts >= MAX_DELIVERY_ATTEMPTS:
                logger.error(
                    "alert notification dropped after %d attempts: key=%s rule=%s",
                    attempts,
                    transition.idempotency_key,
                    transition.rule,
                )


class AlertScheduler:
    """Runs :meth:`AlertEvaluator.evaluate` at once and then every ``interval_seconds``,
    in a daemon thread of the serving process."""

    def __init__(self, evaluator: AlertEvaluator, interval_seconds: float) -> None:
        self._evaluator = evaluator
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="agentledger-alerts", daemon=True)

    def start(self) -> None:
        self._thread.start()
        logger.info(
            "alert evaluation started: rules=%d channels=%d interval=%ss",
            len(self._evaluator.config.rules),
            len(self._evaluator.config.channels),
            self._interval,
        )

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Stop after the evaluation under way, if any; wait at most ``timeout_seconds``."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_seconds)
        self._evaluator.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._evaluator.evaluate()
            except Exception:  # broad: a failed pass (store down) is retried at the next tick
                logger.exception("alert evaluation failed; retrying in %ss", self._interval)
            self._stop.wait(self._interval)


def _windowed_figure(rule: Rule, row: MetricsRow) -> tuple[Decimal | None, str]:
    if rule.kind == "workflow_spend":
        return row.cost_usd, "the spend"
    if rule.kind == "cost_per_correct":
        return row.cost_per_correct_outcome_usd, "the cost per correct outcome"
    return Decimal(row.unpriced_calls), "the number of calls on unpriced models"


def _firing(project: str, finding: Finding, now: datetime) -> Transition:
    rule = finding.rule
    key = finding.alert_key
    return Transition(
        project=project,
        alert_key=key,
        idempotency_key=idempotency_key(
            project, key, FIRING, None if rule.kind in PER_RUN else now
        ),
        rule=rule.name,
        kind=rule.kind,
        state=FIRING,
        workflow=finding.workflow,
        run_id=finding.run_id,
        unit=rule.unit,
        threshold=rule.threshold,
        actual=finding.actual,
        window_seconds=None if rule.kind in PER_RUN else rule.window_seconds,
        message=finding.message,
        fired_at=now,
        changed_at=now,
        delivered=False,
        attempts=0,
    )


def _resolved(last: Transition, rule: Rule, now: datetime) -> Transition:
    message = (
        f"resolved: rule {rule.name!r} no longer finds a breach for workflow "
        f"{last.workflow!r} (it fired at {last.fired_at.isoformat()})"
    )
    return replace(
        last,
        idempotency_key=idempotency_key(last.project, last.alert_key, RESOLVED, last.fired_at),
        state=RESOLVED,
        threshold=rule.threshold,
        actual=None,
        message=message,
        changed_at=now,
        delivered=False,
        attempts=0,
    )


def _transition(row: dict[str, Any]) -> Transition:
    values = {column: row[column] for column in ALERT_COLUMNS}
    for column in ("fired_at", "changed_at"):
        moment = values[column]
        values[column] = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    values["delivered"] = bool(values["delivered"])
    return Transition(**values)


def _number(value: Decimal, unit: str) -> str:
    if unit == "usd":
        return f"${value.normalize():f}"
    if unit == "tokens":
        return f"{int(value):,} tokens"
    return f"{int(value):,}"


def scheduler_for(settings: CollectorSettings, store: Store) -> AlertScheduler | None:
    """The alert schedule of a serving process, or None when it has nothing to evaluate.

    Raises:
        SettingsError: the alerts file is invalid (the collector does not start).
    """
    if settings.alerts_file is None:
        return None
    config = load_config(settings.alerts_file)
    if not settings.evaluate_alerts:
        logger.info(
            "alert evaluation off in this process (evaluate_alerts=false): file=%s",
            settings.alerts_file,
        )
        return None
    if not config.channels:
        logger.warning(
            "alerts file has no channel: file=%s; alerts are recorded but not sent",
            settings.alerts_file,
        )
    return AlertScheduler(AlertEvaluator(store, config), config.interval_seconds)


def send_test_notification(path: str | Path, *, notifier: Notifier | None = None) -> int:
    """Send a test notification to every channel of the alerts file at ``path``.

    Prints one line per channel. Returns the exit code of ``agentledger alerts test``: 0 when
    every channel took it, 1 when one did not, 2 when the file is invalid or has no channel.
    """
    try:
        config = load_config(Path(path))
    except SettingsError as exc:
        print(f"agentledger alerts test: {exc}", file=sys.stderr)
        return 2
    if not config.channels:
        print(f"agentledger alerts test: {str(path)!r} has no [[channel]]", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    notification = Notification(
        idempotency_key="test-" + idempotency_key("test", str(path), "test", now),
        state="test",
        rule="test",
        kind="test",
        project="default",
        workflow="",
        run_id="",
        unit="",
        threshold=Decimal(0),
        actual=None,
        window_seconds=None,
        fired_at=now,
        changed_at=now,
        message="agentledger test notification: this channel receives agentledger alerts.",
    )
    sender = notifier if notifier is not None else Notifier(config.channels)
    try:
        results: list[Delivery] = sender.send(notification)
    finally:
        if notifier is None:
            sender.close()
    for result in results:
        print(f"{result.channel}: " + ("sent" if result.ok else f"FAILED ({result.error})"))
    return 0 if all(result.ok for result in results) else 1
