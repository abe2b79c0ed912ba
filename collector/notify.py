"""Delivery of alert notifications: a generic JSON webhook, and chat and mail through Apprise.

Two kinds of channel:

- ``webhook = "https://..."``: an HTTP POST of the notification as one JSON object (the
  fields of :meth:`Notification.payload`), with the idempotency key also in the
  ``Idempotency-Key`` header. A 2xx answer is delivery. This is our own small client on
  httpx because Apprise's ``json://`` service posts a fixed shape (version, title, message,
  type) whose only extra fields are constants from its URL, so it cannot carry the run,
  the workflow, the figures or a per-notification idempotency key as fields.
- ``apprise = "slack://..."`` (or ``mailto://``, ``discord://``, ``msteams://``, ...): any
  service that Apprise supports, with a title and a text body that ends with the
  idempotency key, since those services have no field for it.

Every notification carries an idempotency key: the same alert transition always has the
same key, also when it is sent again after a failure or a restart, so that receivers can
drop repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentledger.collector.api import encode_json

logger = logging.getLogger(__name__)

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
APPRISE_EXTRA_HINT: Final = (
    "apprise channels need the server extra: pip install 'agentledger[server]'"
)


class Channel(BaseModel):
    """One place notifications go: exactly one of ``webhook`` or ``apprise``."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    #: URL of a generic JSON webhook.
    webhook: str | None = None
    #: An Apprise service URL, e.g. ``slack://TokenA/TokenB/TokenC/#ops`` or
    #: ``mailtos://user:pass@example.com?to=ops@example.com``.
    apprise: str | None = None
    #: Extra headers for the webhook, e.g. ``{Authorization = "Bearer ..."}``.
    headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_target(self) -> Channel:
        if (self.webhook is None) == (self.apprise is None):
            raise ValueError(
                f"channel {self.name or '(unnamed)'!r} needs exactly one of 'webhook' or "
                f"'apprise', got webhook={self.webhook!r} apprise={_redacted(self.apprise)!r}"
            )
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(
                f"channel {self.name or '(unnamed)'!r}: webhook must be an http:// or https:// "
                f"URL, got {self.webhook!r}"
            )
        return self

    @property
    def label(self) -> str:
        """How logs name the channel, without secrets: its name, else its scheme and host."""
        if self.name:
            return self.name
        if self.webhook is not None:
            return "webhook " + httpx.URL(self.webhook).host
        return "apprise " + (self.apprise or "").split("://", 1)[0]


State = Literal["firing", "resolved", "test"]


@dataclass(frozen=True, slots=True)
class Notification:
    """One alert transition as receivers see it."""

    idempotency_key: str
    state: State
    rule: str
    kind: str
    project: str
    workflow: str
    run_id: str
    unit: str
    threshold: Decimal
    actual: Decimal | None
    window_seconds: int | None
    fired_at: datetime
    changed_at: datetime
    message: str

    def payload(self) -> dict[str, Any]:
        """The JSON object a webhook receives; money and tokens as exact JSON numbers."""
        return {
            "source": "agentledger",
            "idempotency_key": self.idempotency_key,
            "state": self.state,
            "rule": self.rule,
            "kind": self.kind,
            "project": self.project,
            "workflow": self.workflow or None,
            "run_id": self.run_id or None,
            "unit": self.unit,
            "threshold": self.threshold,
            "actual": self.actual,
            "window_seconds": self.window_seconds,
            "fired_at": self.fired_at,
            "changed_at": self.changed_at,
            "message": self.message,
        }

    def title(self) -> str:
        return f"[agentledger] {self.state.upper()}: {self.rule}"

    def body(self) -> str:
        return f"{self.message}\n\nidempotency key: {self.idempotency_key}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """The result of sending one notification to one channel."""

    channel: str
    ok: bool
    error: str = ""


class Notifier:
    """Sends notifications to every configured channel.

    Args:
        channels: where notifications go.
        client: the HTTP client of webhooks (tests inject a transport); a fresh one by
            default, closed by :meth:`close`.
        timeout_seconds: the longest one webhook request may take.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        client: httpx.Client | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._channels = list(channels)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout_seconds)
        self._timeout = timeout_seconds

    @property
    def channels(self) -> list[Channel]:
        return list(self._channels)

    def send(self, notification: Notification) -> list[Delivery]:
        """Send to each channel; never raises. One :class:`Delivery` per channel."""
        results = []
        for channel in self._channels:
            try:
                if channel.webhook is not None:
                    result = self._post(channel, channel.webhook, notification)
                else:
                    result = self._apprise(channel, notification)
            except Exception as exc:  # noqa: BLE001 - one failing channel must not stop the others
                result = Delivery(channel.label, False, f"{type(exc).__name__}: {exc}")
            if not result.ok:
                logger.warning(
                    "notification not delivered: channel=%s key=%s rule=%s reason=%s",
                    result.channel,
                    notification.idempotency_key,
                    notification.rule,
                    result.error,
                )
            results.append(result)
        return results

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _post(self, channel: Channel, url: str, notification: Notification) -> Delivery:
        headers = {
            **channel.headers,
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: notification.idempotency_key,
        }
        body = encode_json(notification.payload()).encode("utf-8")
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Delivery(channel.label, False, f"{type(exc).__name__}: {exc}")
        if response.is_success:
            return Delivery(channel.label, True)
        return Delivery(channel.label, False, f"HTTP {response.status_code}")

    def _apprise(self, channel: Channel, notification: Notification) -> Delivery:
        try:
            import apprise
        except ImportError:
            return Delivery(channel.label, False, APPRISE_EXTRA_HINT)

        sender = apprise.Apprise()
        if not sender.add(channel.apprise or ""):
            return Delivery(
                channel.label, False, "Apprise does not recognise the URL of this channel"
            )
        kind = {
            "firing": apprise.NotifyType.FAILURE,
            "resolved": apprise.NotifyType.SUCCESS,
        }.get(notification.state, apprise.NotifyType.INFO)
        ok = bool(
            sender.notify(
                body=notification.body(),
                title=notification.title(),
                notify_type=kind,
                timeout=self._timeout,
            )
        )
        return Delivery(channel.label, ok, "" if ok else "Apprise reported a failure")


def _redacted(url: str | None) -> str | None:
    # Apprise URLs carry tokens and passwords: show the scheme only.
    if url is None:
        return None
    return url.split("://", 1)[0] + "://..."
