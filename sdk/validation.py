"""Checks on the values that agent code hands to the SDK.

Two families, following the rule that the SDK never raises into the agent at runtime:

- ``require_*`` checks run when a :class:`~agentledger.Ledger` is built; a bad value is a
  misconfiguration and raises ``ValueError`` naming the field and the value.
- the other checks run while the agent works; a bad value is logged as a warning and
  replaced by ``None``, so that the attribute is dropped and nothing else is lost.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Collection, Mapping
from typing import Any

logger = logging.getLogger(__name__)


def _as_count(value: object) -> int | None:
    if type(value) is int:
        return value if value >= 0 else None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        as_int = int(value)
        return as_int if as_int >= 0 else None
    return None


def _as_amount(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    as_float = float(value)
    return as_float if math.isfinite(as_float) and as_float >= 0 else None


def _dropped(field: str, value: object, accepted: str) -> None:
    logger.warning(
        "agentledger: invalid value, attribute dropped: %s=%r (accepted: %s)",
        field,
        value,
        accepted,
    )


# --- runtime checks: log and drop -----------------------------------------------------------


def text(value: object, field: str) -> str | None:
    """A non-empty string, or ``None`` (absent or invalid)."""
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    _dropped(field, value, "a non-empty string")
    return None


def count(value: object, field: str) -> int | None:
    """A non-negative integer such as a token count, or ``None``."""
    if value is None:
        return None
    checked = _as_count(value)
    if checked is None:
        _dropped(field, value, "an integer >= 0")
    return checked


def positive_count(value: object, field: str) -> int | None:
    """An integer >= 1 such as an attempt number, or ``None``."""
    if value is None:
        return None
    checked = _as_count(value)
    if checked is None or checked < 1:
        _dropped(field, value, "an integer >= 1")
        return None
    return checked


def amount(value: object, field: str) -> float | None:
    """A finite, non-negative number such as a cost in USD, or ``None``."""
    if value is None:
        return None
    checked = _as_amount(value)
    if checked is None:
        _dropped(field, value, "a finite number >= 0")
    return checked


def fraction(value: object, field: str) -> float | None:
    """A number between 0 and 1 inclusive, or ``None``."""
    if value is None:
        return None
    checked = _as_amount(value)
    if checked is None or checked > 1.0:
        _dropped(field, value, "a number between 0 and 1")
        return None
    return checked


def choice(value: object, field: str, allowed: Collection[str]) -> str | None:
    """One of ``allowed``, or ``None``."""
    if value is None:
        return None
    if isinstance(value, str) and value in allowed:
        return value
    _dropped(field, value, " | ".join(allowed))
    return None


def flag(value: object, field: str) -> bool | None:
    """A bool, or ``None``."""
    if value is None or isinstance(value, bool):
        return value
    _dropped(field, value, "True or False")
    return None


def timestamp(value: object, field: str) -> int | None:
    """Nanoseconds since the Unix epoch, or ``None`` (meaning: now)."""
    if value is None:
        return None
    checked = _as_count(value)
    if checked is None:
        logger.warning(
            "agentledger: invalid timestamp, using the current time: %s=%r "
            "(accepted: integer nanoseconds since the Unix epoch)",
            field,
            value,
        )
    return checked


# --- construction checks: raise ValueError --------------------------------------------------


def require_text(value: object, field: str, *, optional: bool = False) -> str | None:
    """A non-empty string (or ``None`` when ``optional``); raises ``ValueError`` otherwise."""
    if value is None and optional:
        return None
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError(f"{field} must be a non-empty string, got {value!r}")


def require_seconds(value: object, field: str) -> float:
    """A finite number of seconds > 0; raises ``ValueError`` otherwise."""
    checked = _as_amount(value)
    if checked is None or checked <= 0:
        raise ValueError(f"{field} must be a finite number of seconds > 0, got {value!r}")
    return checked


def require_endpoint(value: object, field: str) -> str:
    """An ``http://`` or ``https://`` base URL without a trailing slash."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value.rstrip("/")
    raise ValueError(f"{field} must be an http:// or https:// URL, got {value!r}")


def require_tier_map(value: object, field: str) -> dict[str, str]:
    """A mapping of model name to tier name, both non-empty strings."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{field} must map model names to tier names, got {value!r}")
    checked: dict[str, str] = {}
    item: tuple[Any, Any]
    for item in value.items():
        model, tier = item
        if not (isinstance(model, str) and model and isinstance(tier, str) and tier):
            raise ValueError(
                f"{field} must map non-empty model names to non-empty tier names, "
                f"got {model!r}: {tier!r}"
            )
        checked[model] = tier
    return checked
