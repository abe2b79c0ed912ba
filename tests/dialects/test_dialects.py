"""The foreign-span rules of ``collector/dialects.py``, through the span mapper."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agentledger.collector.dialects import ContextRules, tier_for
from agentledger.collector.mapping import SPAN_COLUMNS, SpanMapper
from agentledger.collector.otlp import DecodedRequest, ResourceSpans, SpanData

TRACE = "ab" * 16
START_NS = 1_760_000_000 * 10**9


def _span(span_id: str, parent: str = "", name: str = "span", **attrs: Any) -> SpanData:
    return SpanData(
        trace_id=TRACE,
        span_id=span_id.ljust(16, "0"),
        parent_span_id=parent.ljust(16, "0") if parent else "",
        name=name,
        kind=1,
        start_ns=START_NS + int(span_id, 16),
        end_ns=START_NS + 10**9,
        status_code="",
        attributes=attrs,
    )


def _rows(*spans: SpanData, mapper: SpanMapper | None = None) -> dict[str, dict[str, Any]]:
    batch = (mapper or SpanMapper()).map(DecodedRequest([ResourceSpans({}, list(spans))]))
    assert batch.rejected == []
    rows = [dict(zip(SPAN_COLUMNS, row, strict=True)) for row in batch.spans]
    return {row["span_id"].rstrip("0") or "0": row for row in rows}


USAGE_CASES = {
    "otel-current": (
        {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "m",
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 40,
            "gen_ai.usage.cache_read.input_tokens": 60,
            "gen_ai.usage.cache_creation.input_tokens": 5,
            "gen_ai.usage.reasoning.output_tokens": 30,
        },
        ("openai", "m", 100, 40, 60, 5, 30),
    ),
    "otel-before-1.28": (
        {
            "gen_ai.system": "anthropic",
            "gen_ai.request.model": "m",
            "gen_ai.usage.prompt_tokens": 100,
            "gen_ai.usage.completion_tokens": 40,
        },
        ("anthropic", "m", 100, 40, None, None, None),
    ),
    "traceloop": (
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "m",
            "gen_ai.usage.input_tokens": "100",
            "gen_ai.usage.output_tokens": "40",
            "gen_ai.usage.cache_read_input_tokens": 60,
            "gen_ai.usage.cache_creation_input_tokens": 5,
            "gen_ai.usage.reasoning_tokens": 30,
        },
        ("openai", "m", 100, 40, 60, 5, 30),
    ),
    "openinference": (
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "openai",
            "llm.model_name": "m",
            "llm.token_count.prompt": "100",
            "llm.token_count.completion": "40",
            "llm.token_count.prompt_details.cache_read": "60",
            "llm.token_count.completion_details.reasoning": "30",
        },
        ("openai", "m", 100, 40, 60, None, 30),
    ),
    "openinference-system-only": (
        {"llm.system": "openai", "llm.model_name": "m", "llm.token_count.prompt": 9},
        ("openai", "m", 9, None, None, None, None),
    ),
    "pydantic-ai-gemini-thoughts": (
        {
            "gen_ai.system": "google-gla",
            "gen_ai.request.model": "m",
            "gen_ai.usage.input_tokens": "40",
            "gen_ai.usage.output_tokens": "159",
            "gen_ai.usage.details.thoughts_tokens": "121",
        },
        ("google-gla", "m", 40, 159, None, None, 121),
    ),
    "langfuse-sdk": (
        {
            "langfuse.observation.model.name": "m",
            "langfuse.observation.usage_details": json.dumps(
                {"input": 40, "input_cache_read": 60, "output": 10, "output_reasoning": 30}
            ),
        },
        ("", "m", 100, 40, 60, None, 30),
    ),
}


@pytest.mark.parametrize("attrs, expected", USAGE_CASES.values(), ids=USAGE_CASES.keys())
def test_each_dialect_gives_usage_in_our_convention(
    attrs: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    row = _rows(_span("1", **attrs))["1"]
    got = tuple(
        row[c]
        for c in (
            "provider",
            "model",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        )
    )
    assert got == expected
    assert row["counts_usage"] is True


def test_current_names_win_over_older_ones() -> None:
    row = _rows(_span("1", **{"gen_ai.usage.input_tokens": 5, "gen_ai.usage.prompt_tokens": 7}))[
        "1"
    ]
    assert row["input_tokens"] == 5


def test_langfuse_details_yield_to_any_other_dialect() -> None:
    details = json.dumps({"input": 1, "output": 1})
    attrs = {"llm.token_count.prompt": 50, "langfuse.observation.usage_details": details}
    assert _rows(_span("1", **attrs))["1"]["input_tokens"] == 50


def test_another_tools_cost_is_used_only_without_a_price() -> None:
    unknown = {"gen_ai.request.model": "no-such-model-xyz", "gen_ai.usage.input_tokens": 10}
    known = {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1_000_000}
    rows = _rows(
        _span("1", **unknown, **{"operation.cost": "0.25"}),
        _span("2", **known, **{"gen_ai.usage.cost": 99.0}),
    )
    assert (rows["1"]["cost_usd"], rows["1"]["cost_source"]) == (Decimal("0.25"), "reported")
    # gpt-4o-mini input: 0.15 USD per million tokens (OpenAI's published price).
    assert (rows["2"]["cost_usd"], rows["2"]["cost_source"]) == (Decimal("0.15"), "genai-prices")


def test_only_the_innermost_carriers_count() -> None:
    agent = {"gen_ai.agent.name": "a", "gen_ai.usage.input_tokens": 30}
    rows = _rows(
        _span("1", name="agent run", **agent),
        _span("2", "1", name="chat", **{"gen_ai.usage.input_tokens": 10}),
        _span("3", "1", name="chat", **{"gen_ai.usage.input_tokens": 20}),
        _span("4", "1", name="tool", **{"gen_ai.tool.name": "t"}),
    )
    assert [rows[k]["counts_usage"] for k in "1234"] == [False, True, True, False]


@pytest.mark.parametrize(
    "model, request_model, expected",
    [
        ("gpt-4o", "", "mid"),
        ("gpt-4o-2024-08-06", "", "mid"),
        ("gpt-4o-mini-2024-07-18", "", "small"),
        ("vendor-snapshot-7", "gpt-4o-mini", "small"),
        ("gpt-4", "", ""),
        ("", "", ""),
    ],
)
def test_the_tier_map_matches_exact_then_request_then_dated(
    model: str, request_model: str, expected: str
) -> None:
    tiers = {"gpt-4o": "mid", "gpt-4o-mini": "small"}
    assert tier_for(tiers, model, request_model) == expected


def test_tier_of_a_foreign_call_comes_from_the_map() -> None:
    mapper = SpanMapper(tier_map={"gpt-4o": "frontier"})
    attrs = {"gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 1}
    assert _rows(_span("1", **attrs), mapper=mapper)["1"]["tier"] == "frontier"


def test_openinference_agents_root_names_workflow_and_graph_node_the_step() -> None:
    rows = _rows(
        _span("1", name="Agent workflow", **{"openinference.span.kind": "AGENT"}),
        _span("2", "1", name="Hello world", **{"graph.node.id": "Hello world"}),
        _span("3", "2", name="response", **{"llm.token_count.prompt": 5}),
    )
    assert {(r["workflow"], r["step_name"]) for r in rows.values()} == {
        ("Agent workflow", ""),
        ("Agent workflow", "Hello world"),
    }
    assert rows["3"]["step_name"] == "Hello world"
    assert rows["3"]["run_id"] == TRACE


def test_traceloop_workflow_and_task_names() -> None:
    rows = _rows(
        _span("1", name="root"),
        _span(
            "2",
            "1",
            name="plan.workflow",
            **{"traceloop.span.kind": "workflow", "traceloop.workflow.name": "triage"},
        ),
        _span(
            "3",
            "2",
            name="classify.task",
            **{
                "traceloop.span.kind": "task",
                "traceloop.entity.name": "classify",
                "traceloop.workflow.name": "triage",
            },
        ),
        _span("4", "3", name="openai.chat", **{"gen_ai.usage.input_tokens": 3}),
    )
    # An explicit workflow attribute beats the root span's name.
    assert rows["4"]["workflow"] == "triage"
    assert rows["4"]["step_name"] == "classify"


def test_sub_agents_under_a_root_become_steps() -> None:
    rows = _rows(
        _span("1", name="run_joke_generator"),
        _span("2", "1", name="joke_agent run", **{"gen_ai.agent.name": "joke_agent"}),
        _span("3", "2", name="chat", **{"gen_ai.usage.input_tokens": 3}),
        _span("4", "1", name="evaluator run", **{"gen_ai.agent.name": "evaluator"}),
        _span("5", "4", name="chat", **{"gen_ai.usage.input_tokens": 4}),
    )
    assert {r["workflow"] for r in rows.values()} == {"run_joke_generator"}
    assert (rows["3"]["step_name"], rows["5"]["step_name"]) == ("joke_agent", "evaluator")


def test_the_root_agent_name_is_the_workflow() -> None:
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helpdesk"}
    rows = _rows(
        _span("1", name="invoke_agent helpdesk", **attrs),
        _span("2", "1", name="chat", **{"gen_ai.usage.input_tokens": 3}),
    )
    assert (rows["2"]["workflow"], rows["2"]["step_name"]) == ("helpdesk", "")


def test_our_own_context_on_a_foreign_span_is_kept() -> None:
    attrs = {"agentledger.workflow": "mine", "agentledger.step.name": "s"}
    rows = _rows(_span("1", name="root"), _span("2", "1", name="chat", **attrs))
    assert (rows["2"]["workflow"], rows["2"]["step_name"]) == ("mine", "s")
    assert rows["1"]["workflow"] == "mine"


def test_rules_from_a_file_change_the_step_attribute(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"step_attributes": ["langgraph_node"]}))
    mapper = SpanMapper(context_rules=ContextRules.from_file(path))
    rows = _rows(
        _span("1", name="LangGraph"),
        _span("2", "1", name="agent", langgraph_node="agent"),
        _span("3", "2", name="chat", **{"gen_ai.usage.input_tokens": 1}),
        mapper=mapper,
    )
    assert (rows["3"]["workflow"], rows["3"]["step_name"]) == ("LangGraph", "agent")


@pytest.mark.parametrize(
    "content, message",
    [
        ("[]", "must be a JSON object"),
        ('{"step_attrs": []}', "unknown field 'step_attrs'"),
        ('{"step_attributes": "x"}', "must be a list of strings"),
        ('{"agent_span_kinds": [["a"]]}', r"must be a list of \[attribute, value\] pairs"),
        ("{", "cannot be read"),
    ],
)
def test_bad_rule_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        ContextRules.from_file(path)


def test_the_collector_reads_its_rules_file_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentledger.collector.settings import CollectorSettings, SettingsError
    from agentledger.schemas import environment as env

    path = tmp_path / "rules.json"
    path.write_text('{"workflow_attributes": ["app.flow"]}')
    monkeypatch.setenv(env.AGENTLEDGER_DIALECT_RULES, str(path))
    assert CollectorSettings().context_rules().workflow_attributes == ("app.flow",)
    path.write_text('{"nope": []}')
    with pytest.raises(SettingsError, match="unknown field 'nope'"):
        CollectorSettings().context_rules()


def test_an_instrumented_client_inside_an_sdk_call_counts_once() -> None:
    sdk_call = {"agentledger.span.kind": "llm", "gen_ai.usage.input_tokens": 10}
    rows = _rows(
        _span("1", name="llm", **sdk_call),
        _span("2", "1", name="openai.chat", **{"gen_ai.usage.input_tokens": 10}),
    )
    assert (rows["1"]["counts_usage"], rows["2"]["counts_usage"]) == (True, False)
