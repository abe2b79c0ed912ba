"""Provider responses in, OpenTelemetry GenAI usage out.

Providers count tokens in different ways. Anthropic reports the input *without* its cache
reads and cache writes; Gemini reports its reasoning "thoughts" *beside* the candidates;
OpenAI counts both inside. agentledger stores the OpenTelemetry convention: input includes
cache reads and cache writes, output includes reasoning.

The extraction itself is genai-prices' (``Provider.extract_usage``), which already returns
that convention: Anthropic input 1,000 + cache reads 300 + cache writes 100 gives 1,400;
Gemini candidates 1,000 + thoughts 1,000 gives an output of 2,000. The provider's extractor
is called directly rather than through ``genai_prices.extract_usage``, because the latter
also looks the model up in its price table and raises for a model it does not know (a
private model, an alias); pricing is the collector's job.

A response without usage yields no usage at all: a missing figure stays unknown, never 0 and
never an estimate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from numbers import Integral
from typing import Any, Final

__all__ = ["ProviderUsage", "UsageNotFound", "extract_usage"]

# Flavors tried, in order, when the caller names none: each needs its own required fields
# (chat: prompt_tokens; responses: input_tokens), so a wrong one fails instead of misreading.
_AUTO_FLAVORS: Final = ("default", "chat", "responses")

# Streamed events whose payload is a whole response: OpenAI Responses' final event and
# Anthropic's first event.
_WRAPPED: Final = {"response.completed": "response", "message_start": "message"}

_CAMEL_BOUNDARY: Final = re.compile(r"_([a-z])")


class UsageNotFound(ValueError):
    """The response holds no usage that can be read for that provider and flavor."""


@dataclass(frozen=True, slots=True)
class ProviderUsage:
    """Usage of one call in the OpenTelemetry convention; ``None`` means not reported."""

    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    reasoning_tokens: int | None


def extract_usage(
    response: object, *, provider: str, api_flavor: str | None = None
) -> ProviderUsage:
    """Read the usage of a provider response.

    Args:
        response: The decoded JSON response (a mapping) or a client object with
            ``model_dump()`` (OpenAI, Anthropic, google-genai): a complete response, or
            the final chunk or event of a stream that carries the usage.
        provider: The provider, as an OpenTelemetry name (``openai``, ``anthropic``,
            ``gcp.gemini``) or a genai-prices id (``google``).
        api_flavor: The API shape, e.g. ``chat`` or ``responses`` for OpenAI; when
            omitted, the provider's default, chat and responses shapes are tried in turn.

    Raises:
        UsageNotFound: the provider is unknown or the response carries no readable usage.
    """
    data = _as_mapping(response)
    extractor = _provider(provider)
    if extractor.id == "google" and "usage_metadata" in data:
        data = _camel_keys(data)  # google-genai's model_dump() without by_alias
    wrapped = _WRAPPED.get(str(data.get("type", "")))
    if wrapped and isinstance(data.get(wrapped), Mapping):
        data = data[wrapped]

    flavors = [api_flavor] if api_flavor else _candidate_flavors(extractor)
    reasons = []
    for flavor in flavors:
        try:
            model, usage = extractor.extract_usage(data, api_flavor=flavor)
        except ValueError as exc:
            reasons.append(f"{flavor}: {exc}")
            continue
        return _converted(model, usage)
    raise UsageNotFound(
        f"no usage found for provider {provider!r} ({'; '.join(reasons) or 'no extractor'})"
    )


def _provider(name: str) -> Any:
    # Imported here: genai-prices loads its price snapshot on first use, which the agent
    # pays only when it hands a response over.
    from genai_prices.data_snapshot import get_snapshot

    snapshot = get_snapshot()
    # OpenTelemetry writes "x_ai" where genai-prices has "x-ai".
    for candidate in dict.fromkeys((name, name.replace("_", "-"))):
        try:
            return snapshot.find_provider(None, candidate, None)
        except LookupError:
            continue
    raise UsageNotFound(f"provider {name!r} is not known to genai-prices")


def _candidate_flavors(provider: Any) -> list[str]:
    known = [e.api_flavor for e in provider.extractors or ()]
    return [flavor for flavor in _AUTO_FLAVORS if flavor in known]


def _as_mapping(response: object) -> Mapping[str, Any]:
    if isinstance(response, Mapping):
        return _without_nones(response)
    dump = getattr(response, "model_dump", None)
    if callable(dump):
        # by_alias gives the wire names (google-genai's camelCase); exclude_none makes an
        # absent optional detail absent rather than a null that the extractor refuses.
        dumped = dump(mode="json", by_alias=True, exclude_none=True)
        if isinstance(dumped, Mapping):
            return dumped
    raise UsageNotFound(
        f"response of type {type(response).__name__!r} is neither a mapping nor a pydantic "
        "client object with model_dump()"
    )


def _without_nones(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        key: _without_nones(value) if isinstance(value, Mapping) else value
        for key, value in data.items()
        if value is not None
    }


def _camel_keys(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {
            _CAMEL_BOUNDARY.sub(lambda m: m.group(1).upper(), str(k)): _camel_keys(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_camel_keys(v) for v in data]
    return data


def _converted(model: str | None, usage: Any) -> ProviderUsage:
    # Usage answers 0 for any figure that was not reported; its instance dict holds only
    # the reported ones, which is the difference between 0 and unknown that we keep.
    reported: dict[str, Any] = vars(usage)
    return ProviderUsage(
        model=model or None,
        input_tokens=_tokens(reported.get("input_tokens")),
        output_tokens=_tokens(reported.get("output_tokens")),
        cache_read_tokens=_tokens(reported.get("cache_read_tokens")),
        cache_write_tokens=_tokens(reported.get("cache_write_tokens")),
        reasoning_tokens=_tokens(reported.get("output_reasoning_tokens")),
    )


def _tokens(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, (float, Decimal)) and value == int(value):
        return int(value)
    return None
