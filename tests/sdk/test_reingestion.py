"""Re-ingested tokens: explicit values, the carry-forward estimate, and unknown."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentledger
from agentledger.schemas import attributes as attr
from tests.sdk.conftest import attrs, of_kind

REINGESTED = "agentledger.context.reingested_tokens"


def _reingested(exporter: InMemorySpanExporter) -> list[object]:
    calls = sorted(
        of_kind(exporter.get_finished_spans(), attr.KIND_LLM), key=lambda span: span.start_time or 0
    )
    return [attrs(span).get(REINGESTED, "absent") for span in calls]


def _chat_loop(
    ledger: agentledger.Ledger,
    usages: Sequence[tuple[int | None, int | None]],
    reingestion: str,
    explicit: dict[int, int] | None = None,
) -> None:
    explicit = explicit or {}
    with ledger.run("chat", reingestion=reingestion) as run:  # type: ignore[arg-type]
        for k, (inputs, outputs) in enumerate(usages):
            with run.step(f"turn-{k}") as step, step.llm(model="gpt-4o") as call:
                call.record_usage(
                    input_tokens=inputs, output_tokens=outputs, reingested_tokens=explicit.get(k)
                )


def test_carry_forward_worked_by_hand(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    _chat_loop(ledger, [(1_000, 200), (1_500, 300), (2_300, 100)], "carry-forward")

    # Call 1: first call, 0. Call 2: min(1,500, 1,000 + 200) = 1,200.
    # Call 3: min(2,300, 1,500 + 300) = 1,800.
    assert _reingested(exporter) == [0, 1_200, 1_800]


def test_carry_forward_is_capped_by_the_call_input(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    # The agent trimmed its context before call 2: min(900, 1,000 + 200) = 900.
    _chat_loop(ledger, [(1_000, 200), (900, 50)], "carry-forward")

    assert _reingested(exporter) == [0, 900]


def test_explicit_value_wins_over_the_estimate(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    _chat_loop(
        ledger, [(1_000, 200), (1_500, 300), (2_300, 100)], "carry-forward", explicit={1: 700}
    )

    # Call 2 says 700 itself; call 3 still estimates from call 2's tokens: 1,500 + 300.
    assert _reingested(exporter) == [0, 700, 1_800]


def test_without_carry_forward_only_explicit_values_are_recorded(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    _chat_loop(ledger, [(1_000, 200), (1_500, 300)], "explicit", explicit={1: 1_100})

    assert _reingested(exporter) == ["absent", 1_100]


def test_unknown_tokens_make_the_next_estimate_unknown(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    # Call 2 reports no output, so call 3 cannot know what call 2 added; call 4 can again.
    _chat_loop(ledger, [(1_000, 200), (1_300, None), (1_800, 100), (2_000, 100)], "carry-forward")

    # Call 2: min(1,300, 1,200) = 1,200. Call 3: unknown. Call 4: min(2,000, 1,900).
    assert _reingested(exporter) == [0, 1_200, "absent", 1_900]


def test_recording_usage_twice_on_one_call_does_not_advance_the_sequence(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("chat", reingestion="carry-forward") as run:
        with run.llm(model="gpt-4o") as first:
            first.record_usage(input_tokens=1_000, output_tokens=100)
            # A streamed call reports its final usage again, a little higher.
            first.record_usage(input_tokens=1_000, output_tokens=200)
        with run.llm(model="gpt-4o") as second:
            second.record_usage(input_tokens=1_500, output_tokens=300)

    # The first call stays the first (0); the second uses its final figures: 1,000 + 200.
    assert _reingested(exporter) == [0, 1_200]


def test_calls_without_usage_do_not_count_in_the_sequence(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    with ledger.run("chat", reingestion="carry-forward") as run:
        with run.llm(model="gpt-4o") as first:
            first.record_usage(input_tokens=1_000, output_tokens=200)
        with run.llm(model="gpt-4o") as failed:
            failed.record_error("connection_error")
        with run.llm(model="gpt-4o") as third:
            third.record_usage(input_tokens=1_500, output_tokens=100)

    # The failed call added nothing to the conversation: min(1,500, 1,000 + 200).
    assert _reingested(exporter) == [0, "absent", 1_200]


def test_each_run_has_its_own_sequence(
    ledger: agentledger.Ledger, exporter: InMemorySpanExporter
) -> None:
    _chat_loop(ledger, [(1_000, 200)], "carry-forward")
    _chat_loop(ledger, [(3_000, 200)], "carry-forward")

    assert _reingested(exporter) == [0, 0]
