"""From decoded spans to ``spans`` and ``outcomes`` rows: every column's rule, by hand."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from agentledger.collector import otlp
from agentledger.collector.mapping import OUTCOME_COLUMNS, SPAN_COLUMNS, SpanMapper
from agentledger.collector.pricing import Pricer
from tests.collector.otlp_payloads import (
    T_START,
    TRACE_ID,
    ResourceSpec,
    SpanSpec,
    json_request,
    proto_request,
)

END = T_START + 2_000_000_000
RUN_CONTEXT = {
    "agentledger.run.id": "run-1",
    "agentledger.workflow": "support",
    "agentledger.step.name": "classify",
    "agentledger.step.id": "step-1",
    "agentledger.attempt": 2,
}


def _map(
    *spans: SpanSpec,
    resource: dict[str, Any] | None = None,
    tier_map: dict[str, str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    spec = ResourceSpec(list(spans))
    if resource is not None:
        spec.attributes = resource
    decoded = otlp.decode_protobuf(proto_request([spec]))
    batch = SpanMapper(tier_map=tier_map, pricer=Pricer()).map(decoded)
    rows = [dict(zip(SPAN_COLUMNS, row, strict=True)) for row in batch.spans]
    outcomes = [dict(zip(OUTCOME_COLUMNS, row, strict=True)) for row in batch.outcomes]
    return rows, outcomes, batch.rejected


def test_columns_match_the_ddl() -> None:
    from agentledger.schemas.sql import migrations

    ddl = migrations()[0].statements[0]
    declared = [
        line.split()[0]
        for line in ddl.split("(", 1)[1].splitlines()
        if line.strip() and line.startswith("    ") and not line.strip().startswith(")")
    ]
    assert set(SPAN_COLUMNS) == set(declared) - {"ingested_at"}


def test_an_sdk_llm_span_maps_every_column() -> None:
    attributes = {
        **RUN_CONTEXT,
        "agentledger.span.kind": "llm",
        "agentledger.tier": "small",
        "agentledger.task.complexity": "low",
        "agentledger.task.sensitivity": "internal",
        "agentledger.task.context": "short",
        "agentledger.attempt.accepted": False,
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1_000,
        "gen_ai.usage.output_tokens": 100,
        "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.usage.reasoning.output_tokens": 40,
        "agentledger.context.reingested_tokens": 600,
        "agentledger.tokens.predicted": 1_500,
        "agentledger.cost.usd": 0.0125,
        "error.type": "timeout",
    }
    resource = {
        "service.name": "agent",
        "service.version": "1.4.0",
        "deployment.environment.name": "prod",
        "agentledger.project": "acme",
    }

    rows, outcomes, rejected = _map(
        SpanSpec(
            "00000000000000a2",
            parent="00000000000000a1",
            name="chat gpt-4o-mini",
            attributes=attributes,
            status=2,
        ),
        resource=resource,
    )

    assert rejected == [] and outcomes == []
    (row,) = rows
    expected = {
        "project": "acme",
        "trace_id": TRACE_ID,
        "span_id": "00000000000000a2",
        "parent_span_id": "00000000000000a1",
        "kind": "llm",
        "name": "chat gpt-4o-mini",
        "start_time": T_START,
        "end_time": END,
        "status_code": "ERROR",
        "service_name": "agent",
        "service_version": "1.4.0",
        "environment": "prod",
        "run_id": "run-1",
        "run_parent_id": "",
        "workflow": "support",
        "conversation_id": "",
        "budget_tokens": None,
        "budget_usd": None,
        "step_name": "classify",
        "step_id": "step-1",
        "tier": "small",
        "attempt": 2,
        "attempt_accepted": False,
        "task_complexity": "low",
        "task_sensitivity": "internal",
        "task_context": "short",
        "operation": "chat",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "response_model": "gpt-4o-mini-2024-07-18",
        "model": "gpt-4o-mini-2024-07-18",
        "tool_name": "",
        "error_type": "timeout",
        "counts_usage": True,
        "input_tokens": 1_000,
        "output_tokens": 100,
        "cache_read_tokens": 200,
        "cache_write_tokens": 0,
        "reasoning_tokens": 40,
        "reingested_tokens": 600,
        "predicted_tokens": 1_500,
        "cost_usd": Decimal("0.0125"),
        "cost_source": "reported",
        "outcome": "",
        "outcome_score": None,
        "resource_attributes": {
            "service.name": "agent",
            "service.version": "1.4.0",
            "deployment.environment.name": "prod",
            "agentledger.project": "acme",
        },
    }
    assert {k: v for k, v in row.items() if k != "attributes"} == expected
    assert row["attributes"]["gen_ai.usage.input_tokens"] == "1000"
    assert row["attributes"]["agentledger.attempt.accepted"] == "false"
    assert row["attributes"]["agentledger.cost.usd"] == "0.0125"
    assert len(row["attributes"]) == len(attributes)


def test_a_priced_call_without_a_reported_cost() -> None:
    # gpt-4o-mini: 800 * 0.15 + 200 * 0.075 + 100 * 0.60 = 195 µ$
    rows, _, _ = _map(
        SpanSpec(
            "00000000000000a2",
            attributes={
                "agentledger.span.kind": "llm",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1_000,
                "gen_ai.usage.cache_read.input_tokens": 200,
                "gen_ai.usage.output_tokens": 100,
            },
        )
    )

    assert (rows[0]["cost_usd"], rows[0]["cost_source"]) == (Decimal("0.000195"), "genai-prices")


def test_an_unknown_model_has_null_cost_and_no_source() -> None:
    rows, _, _ = _map(
        SpanSpec(
            "00000000000000a2",
            attributes={
                "agentledger.span.kind": "llm",
                "gen_ai.request.model": "m-unknown",
                "gen_ai.usage.input_tokens": 1_000,
                "gen_ai.usage.output_tokens": 100,
            },
        )
    )

    assert (rows[0]["cost_usd"], rows[0]["cost_source"]) == (None, "")


@pytest.mark.parametrize(
    ("attributes", "tier_map", "tier"),
    [
        (
            {"agentledger.tier": "frontier", "gen_ai.request.model": "m1"},
            {"m1": "small"},
            "frontier",
        ),
        ({"gen_ai.request.model": "m1"}, {"m1": "small"}, "small"),
        # the tier map is keyed by the call's model: the response model when known
        (
            {"gen_ai.request.model": "m1", "gen_ai.response.model": "m1-0501"},
            {"m1": "small", "m1-0501": "mid"},
            "mid",
        ),
        ({"gen_ai.request.model": "m2"}, {"m1": "small"}, ""),
    ],
)
def test_tier_from_attribute_else_tier_map_else_empty(
    attributes: dict[str, Any], tier_map: dict[str, str], tier: str
) -> None:
    rows, _, _ = _map(SpanSpec("00000000000000a2", attributes=attributes), tier_map=tier_map)

    assert rows[0]["tier"] == tier


def test_run_id_defaults_to_the_trace_id_and_project_to_default() -> None:
    rows, _, _ = _map(SpanSpec("00000000000000a2"), resource={})

    assert rows[0]["run_id"] == TRACE_ID
    assert rows[0]["project"] == "default"
    assert rows[0]["kind"] == ""


def test_a_run_span_with_a_verdict_gives_an_outcome_row_and_never_counts_usage() -> None:
    attributes = {
        "agentledger.span.kind": "run",
        "agentledger.run.id": "run-1",
        "agentledger.workflow": "support",
        "agentledger.outcome": "correct",
        "agentledger.outcome.score": 0.75,
        "agentledger.budget.tokens": 10_000,
        "agentledger.budget.usd": 0.5,
        # a roll-up of its children's usage: stored, never counted, never priced
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 5_000,
        "gen_ai.usage.output_tokens": 500,
    }

    rows, outcomes, _ = _map(SpanSpec("00000000000000a1", attributes=attributes))

    row = rows[0]
    assert (row["counts_usage"], row["cost_usd"], row["cost_source"]) == (False, None, "")
    assert (row["budget_tokens"], row["budget_usd"]) == (10_000, Decimal("0.5"))
    assert (row["outcome"], row["outcome_score"]) == ("correct", 0.75)
    assert outcomes == [
        {
            "project": "default",
            "run_id": "run-1",
            "outcome": "correct",
            "score": 0.75,
            "source": "run",
            "decided_at": END,
            "outcome_key": f"run:{TRACE_ID}00000000000000a1",
        }
    ]


@pytest.mark.parametrize(("source", "expected"), [("evaluator", "evaluator"), (None, "span")])
def test_an_outcome_span_gives_an_outcome_row(source: str | None, expected: str) -> None:
    attributes: dict[str, Any] = {
        "agentledger.span.kind": "outcome",
        "agentledger.run.id": "run-9",
        "agentledger.outcome": "incorrect",
    }
    if source:
        attributes["agentledger.outcome.source"] = source

    rows, outcomes, _ = _map(
        SpanSpec("00000000000000c1", trace_id="cd" * 16, attributes=attributes)
    )

    assert rows[0]["counts_usage"] is False
    assert outcomes == [
        {
            "project": "default",
            "run_id": "run-9",
            "outcome": "incorrect",
            "score": None,
            "source": expected,
            "decided_at": END,
            "outcome_key": "span:" + "cd" * 16 + "00000000000000c1",
        }
    ]


def test_a_step_span_never_counts_usage_and_a_tool_span_always_does() -> None:
    rows, _, _ = _map(
        SpanSpec(
            "00000000000000a1",
            attributes={"agentledger.span.kind": "step", "gen_ai.usage.input_tokens": 10},
        ),
        SpanSpec(
            "00000000000000a2",
            attributes={
                "agentledger.span.kind": "tool",
                "gen_ai.tool.name": "search",
                "agentledger.cost.usd": 0.01,
            },
        ),
    )

    assert [r["counts_usage"] for r in rows] == [False, True]
    assert (rows[1]["tool_name"], rows[1]["cost_usd"]) == ("search", Decimal("0.01"))


def test_foreign_spans_count_only_the_innermost_usage_carriers() -> None:
    usage = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}
    rows, _, _ = _map(
        # agent span repeating its children's usage: a roll-up
        SpanSpec("00000000000000f1", attributes={"gen_ai.usage.input_tokens": 300}),
        SpanSpec("00000000000000f2", parent="00000000000000f1", attributes=usage),
        SpanSpec("00000000000000f3", parent="00000000000000f1", attributes=usage),
        # a foreign span without usage
        SpanSpec("00000000000000f4", parent="00000000000000f1"),
        # a foreign span wrapping an SDK llm span is a roll-up too
        SpanSpec("00000000000000f5", attributes=usage),
        SpanSpec(
            "00000000000000f6",
            parent="00000000000000f5",
            attributes={**usage, "agentledger.span.kind": "llm"},
        ),
    )

    counts = {r["span_id"][-2:]: r["counts_usage"] for r in rows}
    assert counts == {"f1": False, "f2": True, "f3": True, "f4": False, "f5": False, "f6": True}


def test_older_and_openinference_names_are_read() -> None:
    rows, _, _ = _map(
        SpanSpec(
            "00000000000000a1",
            attributes={
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.prompt_tokens": 900,
                "gen_ai.usage.completion_tokens": 90,
                "gen_ai.usage.reasoning_tokens": 30,
            },
        ),
        SpanSpec(
            "00000000000000a2",
            attributes={
                "llm.model_name": "gpt-4o-mini",
                "llm.token_count.prompt": 700,
                "llm.token_count.completion": 70,
                "llm.token_count.prompt_details.cache_read": 100,
            },
        ),
    )

    first, second = rows
    assert (first["provider"], first["model"]) == ("openai", "gpt-4o-mini")
    assert (first["input_tokens"], first["output_tokens"], first["reasoning_tokens"]) == (
        900,
        90,
        30,
    )
    assert (second["model"], second["input_tokens"], second["output_tokens"]) == (
        "gpt-4o-mini",
        700,
        70,
    )
    assert second["cache_read_tokens"] == 100
    # 600 * 0.15 + 100 * 0.075 + 70 * 0.60 = 139.5 µ$
    assert second["cost_usd"] == Decimal("0.0001395")
    assert first["counts_usage"] is second["counts_usage"] is True


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({"gen_ai.usage.input_tokens": -5}, "gen_ai.usage.input_tokens -5"),
        ({"gen_ai.usage.output_tokens": "many"}, "gen_ai.usage.output_tokens 'many'"),
        ({"agentledger.cost.usd": -0.5}, "agentledger.cost.usd -0.5"),
        ({"agentledger.cost.usd": "NaN"}, "agentledger.cost.usd 'NaN'"),
        ({"agentledger.outcome": "maybe"}, "agentledger.outcome 'maybe'"),
        ({"agentledger.outcome.score": 1.5}, "agentledger.outcome.score 1.5"),
        ({"agentledger.attempt": 0}, "agentledger.attempt 0"),
        ({"agentledger.attempt.accepted": "yes"}, "agentledger.attempt.accepted 'yes'"),
    ],
)
def test_a_bad_attribute_value_rejects_only_its_span(
    attributes: dict[str, Any], named: str
) -> None:
    rows, _, rejected = _map(
        SpanSpec("00000000000000a1"), SpanSpec("00000000000000a2", attributes=attributes)
    )

    assert [r["span_id"] for r in rows] == ["00000000000000a1"]
    assert len(rejected) == 1
    assert named in rejected[0]


def test_token_counts_written_as_digit_strings_are_accepted() -> None:
    rows, _, _ = _map(
        SpanSpec("00000000000000a1", attributes={"gen_ai.usage.input_tokens": "1200"})
    )

    assert rows[0]["input_tokens"] == 1200


def test_attribute_values_are_stored_as_strings() -> None:
    rows, _, _ = _map(
        SpanSpec(
            "00000000000000a1",
            attributes={
                "s": "x",
                "i": 3,
                "d": 0.5,
                "t": True,
                "f": False,
                "a": ["p", 1],
                "kv": {"k": "v"},
                "raw": b"\x00\x01\x02",
            },
        )
    )

    assert rows[0]["attributes"] == {
        "s": "x",
        "i": "3",
        "d": "0.5",
        "t": "true",
        "f": "false",
        "a": '["p",1]',
        "kv": '{"k":"v"}',
        "raw": "AAEC",
    }


def test_protobuf_and_json_give_identical_rows() -> None:
    spans = [
        SpanSpec(
            "00000000000000a1",
            attributes={
                "agentledger.span.kind": "run",
                "agentledger.run.id": "r",
                "agentledger.outcome": "correct",
                "agentledger.outcome.score": 1.0,
                "agentledger.budget.usd": 2.5,
            },
        ),
        SpanSpec(
            "00000000000000a2",
            parent="00000000000000a1",
            attributes={
                "agentledger.span.kind": "llm",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 10,
                "gen_ai.usage.output_tokens": 2,
                "ratio": 0.1,
                "tags": ["a", 1, 2.0, True],
                "raw": b"\x01",
            },
        ),
    ]
    resources = [ResourceSpec(spans, attributes={"service.name": "a", "n": 7})]
    mapper = SpanMapper()

    from_proto = mapper.map(otlp.decode_protobuf(proto_request(resources)))
    from_json = mapper.map(otlp.decode_json(json_request(resources)))
    from_numbers = mapper.map(otlp.decode_json(json_request(resources, ints_as_numbers=True)))

    assert from_proto.spans == from_json.spans == from_numbers.spans
    assert from_proto.outcomes == from_json.outcomes
    assert len(from_proto.spans) == 2 and len(from_proto.outcomes) == 1


@pytest.mark.parametrize("value", ["agent", ["llm"], 3])
def test_an_unknown_span_kind_is_read_as_a_foreign_span(value: Any) -> None:
    rows, _, rejected = _map(
        SpanSpec(
            "00000000000000a1",
            attributes={"agentledger.span.kind": value, "gen_ai.usage.input_tokens": 5},
        )
    )

    assert rejected == []
    assert (rows[0]["kind"], rows[0]["counts_usage"]) == ("", True)
