"""Deterministic ids for replays."""

from __future__ import annotations

import hashlib

from agentledger.importers.ids import DeterministicIdGenerator, span_id_for, trace_id_for


def test_trace_id_is_the_first_128_bits_of_sha256_of_the_run_id() -> None:
    digest = hashlib.sha256(b"run-1").hexdigest()
    assert trace_id_for("run-1") == int(digest[:32], 16)


def test_span_id_is_64_bits_of_sha256_of_run_id_and_label() -> None:
    digest = hashlib.sha256(b"run-1:4:llm").hexdigest()
    assert span_id_for("run-1", "4:llm") == int(digest[:16], 16)
    assert span_id_for("run-1", "4:llm") != span_id_for("run-1", "4:step")
    assert span_id_for("run-1", "4:llm") != span_id_for("run-2", "4:llm")


def test_the_generator_follows_the_labels_it_is_given() -> None:
    ids = DeterministicIdGenerator()

    ids.begin_run("run-1")
    trace_id, run_span = ids.generate_trace_id(), ids.generate_span_id()
    ids.next_span("2:step")
    step_span = ids.generate_span_id()

    assert trace_id == trace_id_for("run-1")
    assert run_span == span_id_for("run-1", "run")
    assert step_span == span_id_for("run-1", "2:step")
    assert ids.is_trace_id_random() is False


def test_a_span_without_a_fresh_label_still_gets_a_unique_repeatable_id() -> None:
    def three() -> list[int]:
        ids = DeterministicIdGenerator()
        ids.begin_run("run-1")
        ids.next_span("2:llm")
        return [ids.generate_span_id() for _ in range(3)]

    first = three()
    assert len(set(first)) == 3
    assert first == three()
    assert first[1] == span_id_for("run-1", "2:llm#1")
