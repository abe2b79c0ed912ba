"""The SDK's public names, and how little ``import agentledger`` loads."""

from __future__ import annotations

import subprocess
import sys

import agentledger

PUBLIC = [
    "BudgetBreach",
    "BudgetExceeded",
    "Ledger",
    "LlmCall",
    "PropagatingSpanProcessor",
    "Run",
    "Step",
    "ToolCall",
]


def test_public_names_are_pinned_and_resolve() -> None:
    assert agentledger.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(agentledger, name).__name__ == name


def test_importing_agentledger_loads_nothing_heavy() -> None:
    code = (
        "import sys, agentledger;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'opentelemetry', 'google', 'requests', 'fastapi', 'chdb', 'dash', 'pydantic'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_a_ledger_with_its_own_exporter_does_not_load_the_otlp_exporter() -> None:
    code = (
        "import sys, agentledger;"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter;"
        "agentledger.Ledger('a', exporter=InMemorySpanExporter()).shutdown();"
        "print('opentelemetry.exporter.otlp.proto.http' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        agentledger.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("agentledger.NoSuchThing resolved")
