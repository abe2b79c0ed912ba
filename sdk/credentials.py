"""The API key that the SDK and the client commands send to the collector."""

from __future__ import annotations

import os

from agentledger.schemas import environment as env


def api_key(explicit: str | None = None) -> str | None:
    """The key to send: ``explicit``, else ``AGENTLEDGER_API_KEY``, else None (open collector).

    Raises:
        ValueError: the key is empty or holds whitespace, which no header can carry.
    """
    key = explicit if explicit is not None else os.environ.get(env.AGENTLEDGER_API_KEY)
    if key is None or (explicit is None and key == ""):
        return None
    if not isinstance(key, str) or not key or any(c.isspace() for c in key):
        # The value is a secret: the message shows only what is wrong with it.
        raise ValueError("api_key must be a non-empty string without whitespace")
    return key


def bearer_headers(explicit: str | None = None) -> dict[str, str] | None:
    """``Authorization: Bearer`` headers for an OTLP exporter, or None without a key.

    None lets the exporter read ``OTEL_EXPORTER_OTLP_HEADERS`` as usual.
    """
    key = api_key(explicit)
    return None if key is None else {"Authorization": f"Bearer {key}"}
