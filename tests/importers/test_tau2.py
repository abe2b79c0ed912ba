"""The τ²-bench importer: reading files, mapping them to spans, and refusing other files.

Expected values are computed here straight from the JSON (or worked out by hand for the small
synthetic files), never taken from the importer's output.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentledger.importers.tau2 import Tau2FormatError, import_files, read_file
from agentledger.schemas import attributes as attr

SUBMISSIONS = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tau2-bench-submissions"
)
REAL_FILES = sorted(str(path) for path in SUBMISSIONS.glob("*/trajectories/*.json"))
ENDPOINT = "http://127.0.0.1:9"  # never used: every test injects an exporter

needs_real_files = pytest.mark.skipif(
    len(REAL_FILES) != 2, reason=f"the two τ²-bench files are not in {SUBMISSIONS}"
)


# --- helpers --------------------------------------------------------------------------------


def utc_ns(stamp: str) -> int:
    """A zone-less ISO timestamp as UTC nanoseconds, by a route other than the importer's."""
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f")
    return calendar.timegm(moment.timetuple()) * 10**9 + moment.microsecond * 1000


def agent_calls(simulation: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in simulation["messages"] if m["role"] == "assistant" and m.get("usage")]


def run_import(paths: list[str], **kwargs: Any) -> tuple[int, list[ReadableSpan], str, str]:
    exporter = InMemorySpanExporter()
    out, err = io.StringIO(), io.StringIO()
    code = import_files(paths, endpoint=ENDPOINT, exporter=exporter, out=out, err=err, **kwargs)
    return code, list(exporter.get_finished_spans()), out.getvalue(), err.getvalue()


def by_kind(spans: list[ReadableSpan]) -> dict[str, list[ReadableSpan]]:
    kinds: dict[str, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        kinds[str((span.attributes or {}).get(attr.SPAN_KIND, ""))].append(span)
    return kinds


def ids(spans: list[ReadableSpan]) -> list[tuple[int, int]]:
    return sorted((span.context.trace_id, span.context.span_id) for span in spans)


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data, encoding="utf-8")
    return str(path)


def tiny_file(simulations: list[dict[str, Any]], model: str = "claude-sonnet-4-5") -> dict:
    return {
        "timestamp": "2025-01-01T00:00:00",
        "info": {
            "agent_info": {"llm": model},
            "user_info": {"llm": "gpt-4.1"},
            "environment_info": {"domain_name": "retail"},
        },
        "tasks": [],
        "simulations": simulations,
    }


def tiny_simulation(run_id: str, reward: object = 1.0) -> dict[str, Any]:
    # 2025-01-01T00:00:00Z is 1,735,689,600 s after the epoch.
    return {
        "id": run_id,
        "start_time": "2025-01-01T00:00:00.000000",
        "end_time": "2025-01-01T00:00:09.000000",
        "reward_info": {"reward": reward},
        "messages": [
            {
                "role": "assistant",
                "content": "Hi!",
                "timestamp": "2025-01-01T00:00:00.100000",
                "cost": 0.0,
                "usage": None,
            },
            {
                "role": "user",
                "content": "change my order",
                "timestamp": "2025-01-01T00:00:01.5",
                "cost": 0.001,
                "usage": {"prompt_tokens": 300, "completion_tokens": 20},
            },
            {
                "role": "assistant",
                "content": None,
                "timestamp": "2025-01-01T00:00:04.250000",
                "tool_calls": [{"id": "t1", "name": "get_order", "arguments": {}}],
                "cost": 0.02,
                "usage": {"prompt_tokens": 5000, "completion_tokens": 100},
            },
            {"role": "tool", "content": "{}", "timestamp": "2025-01-01T00:00:04.300000"},
            {
                "role": "assistant",
                "content": "Done.",
                "timestamp": "2025-01-01T00:00:08+02:00",
                "tool_calls": None,
                "cost": 0.03,
                "usage": {"prompt_tokens": 5400, "completion_tokens": 60},
            },
        ],
    }


# --- the two real files ---------------------------------------------------------------------


@needs_real_files
@pytest.mark.parametrize("path", REAL_FILES)
def test_reading_a_real_file_finds_every_run_call_and_cost(path: str) -> None:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    simulations = data["simulations"]
    expected_calls = sum(len(agent_calls(s)) for s in simulations)
    expected_cost = sum(m["cost"] for s in simulations for m in agent_calls(s))

    found = read_file(path)

    assert len(found.runs) == len(simulations) == 50
    assert sum(r.outcome == "correct" for r in found.runs) == sum(
        s["reward_info"]["reward"] == 1 for s in simulations
    )
    assert sum(len(r.calls) for r in found.runs) == expected_calls
    assert sum(c.cost_usd or 0 for r in found.runs for c in r.calls) == pytest.approx(
        expected_cost, abs=1e-9
    )
    # The files' own per-run totals agree: the agent's cost is its calls' cost.
    assert expected_cost == pytest.approx(sum(s["agent_cost"] for s in simulations), abs=1e-9)
    assert {r.workflow for r in found.runs} == {"tau2-airline"}
    assert {r.model for r in found.runs} == {data["info"]["agent_info"]["llm"]}
    assert not found.skipped


@needs_real_files
def test_the_real_files_hold_the_figures_that_sources_md_states() -> None:
    # SOURCES.md: 50 runs each, 36 / 38 solved, 467 / 424 calls, $14.44 / $20.68.
    figures = {}
    for path in REAL_FILES:
        simulations = json.loads(Path(path).read_text(encoding="utf-8"))["simulations"]
        figures[Path(path).parts[-3].split("_")[0]] = (
            len(simulations),
            sum(s["reward_info"]["reward"] == 1 for s in simulations),
            sum(len(agent_calls(s)) for s in simulations),
            round(sum(m["cost"] for s in simulations for m in agent_calls(s)), 2),
        )
    assert figures == {
        "claude-sonnet-4-5": (50, 36, 467, 14.44),
        "button-claude-opus-4-6": (50, 38, 424, 20.68),
    }


@needs_real_files
@pytest.mark.parametrize("path", REAL_FILES)
def test_a_real_file_becomes_run_step_and_llm_spans(path: str) -> None:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    simulations = {s["id"]: s for s in data["simulations"]}

    code, spans, out, _ = run_import([path])

    assert code == 0
    kinds = by_kind(spans)
    assert set(kinds) == {"run", "step", "llm"}
    assert len(kinds["run"]) == len(simulations)
    calls = sum(len(agent_calls(s)) for s in simulations.values())
    assert len(kinds["step"]) == len(kinds["llm"]) == calls

    for span in kinds["run"]:
        a = span.attributes or {}
        simulation = simulations[str(a[attr.RUN_ID])]
        assert a[attr.WORKFLOW] == "tau2-airline"
        reward = simulation["reward_info"]["reward"]
        assert a[attr.OUTCOME] == ("correct" if reward == 1 else "incorrect")
        assert span.start_time == utc_ns(simulation["start_time"])
        assert span.end_time == utc_ns(simulation["end_time"])
        assert span.context.trace_id == int(
            hashlib.sha256(simulation["id"].encode()).hexdigest()[:32], 16
        )

    step_names = Counter(str((s.attributes or {})[attr.STEP_NAME]) for s in kinds["step"])
    with_tools = sum(
        bool(m.get("tool_calls")) for s in simulations.values() for m in agent_calls(s)
    )
    assert step_names == Counter({"tool_call": with_tools, "reply": calls - with_tools})
    assert all((s.attributes or {})[attr.ATTEMPT] == 1 for s in kinds["step"])

    model = data["info"]["agent_info"]["llm"]
    total_cost = sum(float((s.attributes or {})[attr.COST_USD]) for s in kinds["llm"])
    assert total_cost == pytest.approx(sum(s["agent_cost"] for s in simulations.values()))
    assert "replayed 50 runs" in out
    assert f"{calls} agent calls" in out

    # Per run, in order: tokens, cost, times and the carry-forward re-ingestion estimate.
    steps = {s.context.span_id: s for s in kinds["step"]}
    runs = {s.context.trace_id: s for s in kinds["run"]}
    llm_by_run: dict[str, list[ReadableSpan]] = defaultdict(list)
    for span in kinds["llm"]:
        llm_by_run[str((span.attributes or {})[attr.RUN_ID])].append(span)
    for run_id, simulation in simulations.items():
        expected = agent_calls(simulation)
        got = sorted(llm_by_run[run_id], key=lambda s: s.end_time or 0)
        assert len(got) == len(expected)
        previous: dict[str, int] | None = None
        for message, span in zip(expected, got, strict=True):
            a = span.attributes or {}
            usage = message["usage"]
            assert a[attr.REQUEST_MODEL] == model
            assert a[attr.PROVIDER_NAME] == "anthropic"
            assert a[attr.INPUT_TOKENS] == usage["prompt_tokens"]
            assert a[attr.OUTPUT_TOKENS] == usage["completion_tokens"]
            assert a[attr.COST_USD] == pytest.approx(message["cost"])
            assert span.end_time == utc_ns(message["timestamp"])
            reingested = (
                0
                if previous is None
                else min(
                    usage["prompt_tokens"],
                    previous["prompt_tokens"] + previous["completion_tokens"],
                )
            )
            assert a[attr.REINGESTED_TOKENS] == reingested
            previous = usage
            step = steps[span.parent.span_id]  # type: ignore[union-attr]
            assert (step.start_time, step.end_time) == (span.start_time, span.end_time)
            assert step.parent is not None
            assert step.parent.span_id == runs[span.context.trace_id].context.span_id


@needs_real_files
def test_importing_the_same_files_twice_sends_the_same_ids() -> None:
    code_1, first, _, _ = run_import(REAL_FILES)
    code_2, second, _, _ = run_import(REAL_FILES)

    assert code_1 == code_2 == 0
    assert ids(first) == ids(second)
    assert len(set(ids(first))) == len(first)  # no two spans share an id
    assert all(span_id != 0 for _, span_id in ids(first))


@needs_real_files
def test_a_long_import_prints_progress(tmp_path: Path) -> None:
    code, _, _, err = run_import(REAL_FILES, progress_every=20)

    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("tau2:")]
    # 100 runs, a line after every 20.
    assert [line.split()[1] for line in lines] == [
        "20/100",
        "40/100",
        "60/100",
        "80/100",
        "100/100",
    ]


# --- small files worked out by hand ---------------------------------------------------------


def test_calls_start_at_the_previous_message_and_end_at_their_own(tmp_path: Path) -> None:
    path = write(tmp_path, "tiny.json", tiny_file([tiny_simulation("run-a")]))

    code, spans, _, _ = run_import([path])

    assert code == 0
    kinds = by_kind(spans)
    # In message order (the second call's clamped times sort before the first's).
    llm = sorted(kinds["llm"], key=lambda s: int((s.attributes or {})[attr.INPUT_TOKENS]))
    base = 1_735_689_600 * 10**9
    # Call 1 answers the user turn of 00:00:01.5 and arrives at 00:00:04.25 (zone-less: UTC).
    assert (llm[0].start_time, llm[0].end_time) == (base + 1_500_000_000, base + 4_250_000_000)
    # Call 2 answers the tool result of 00:00:04.3; its stamp 00:00:08+02:00 is 22:00:08Z the
    # day before, earlier than its start, so the call is clamped to take no time.
    before = base - 2 * 3600 * 10**9 + 8 * 10**9
    assert (llm[1].start_time, llm[1].end_time) == (before, before)
    assert [(s.attributes or {})[attr.REINGESTED_TOKENS] for s in llm] == [0, 5000 + 100]
    assert [(s.attributes or {})[attr.STEP_NAME] for s in llm] == ["tool_call", "reply"]
    (run,) = kinds["run"]
    # The run encloses everything: from 22:00:08Z the day before to its end_time 00:00:09.
    assert (run.start_time, run.end_time) == (before, base + 9 * 10**9)
    assert (run.attributes or {})[attr.WORKFLOW] == "tau2-retail"


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("claude-sonnet-4-5", "anthropic"),
        ("gpt-4.1", "openai"),
        ("my-finetune", None),
        ("bedrock/claude-sonnet-4-5", None),
    ],
)
def test_the_provider_is_set_only_when_the_model_name_says_it(
    tmp_path: Path, model: str, provider: str | None
) -> None:
    path = write(tmp_path, "tiny.json", tiny_file([tiny_simulation("run-a")], model=model))

    _, spans, _, _ = run_import([path])

    for span in by_kind(spans)["llm"]:
        assert (span.attributes or {}).get(attr.PROVIDER_NAME) == provider
        assert (span.attributes or {})[attr.REQUEST_MODEL] == model


@pytest.mark.parametrize(
    ("reward", "outcome"),
    [(1.0, "correct"), (1, "correct"), (0.0, "incorrect"), (0.5, "incorrect"), (None, None)],
)
def test_the_outcome_follows_the_reward(
    tmp_path: Path, reward: object, outcome: str | None
) -> None:
    path = write(tmp_path, "tiny.json", tiny_file([tiny_simulation("run-a", reward)]))

    _, spans, out, _ = run_import([path])

    (run,) = by_kind(spans)["run"]
    assert (run.attributes or {}).get(attr.OUTCOME) == outcome
    assert ("1 without a reward" in out) == (outcome is None)


def test_items_that_cannot_be_replayed_are_skipped_counted_and_named(tmp_path: Path) -> None:
    no_id = tiny_simulation("")
    bad_usage = tiny_simulation("run-b")
    bad_usage["messages"][2]["usage"] = {"prompt_tokens": 5000}
    bad_reward = tiny_simulation("run-c", reward="yes")
    no_cost = tiny_simulation("run-d")
    no_cost["messages"][4]["cost"] = None
    simulations = [
        tiny_simulation("run-a"),
        no_id,
        bad_usage,
        bad_reward,
        tiny_simulation("run-a"),
        no_cost,
    ]
    path = write(tmp_path, "mixed.json", tiny_file(simulations))

    code, spans, out, _ = run_import([path])

    assert code == 0
    kinds = by_kind(spans)
    assert sorted(str((s.attributes or {})[attr.RUN_ID]) for s in kinds["run"]) == [
        "run-a",
        "run-b",
        "run-d",
    ]
    # run-a 2 calls, run-b 1 (one skipped), run-d 2 (one without a reported cost).
    assert len(kinds["llm"]) == 5
    assert sum(attr.COST_USD not in (s.attributes or {}) for s in kinds["llm"]) == 1
    assert "skipped 4 items" in out
    assert "1 x simulation without an 'id' (first at simulations[1])" in out
    assert "(first at simulations[2].messages[2])" in out
    assert "1 x simulation with a non-numeric 'reward_info.reward'" in out
    assert "1 x simulation id repeated in the same file (first at simulations[4])" in out
    assert "calls without a reported cost: 1 " in out


# --- files that are not τ²-bench ------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ([1, 2], "the top level is not an object"),
        ({"simulations": []}, "missing field 'info'"),
        ({"info": {}, "simulations": []}, "missing field 'info.agent_info'"),
        ({"info": {"agent_info": {}}, "simulations": []}, "missing field 'info.agent_info.llm'"),
        (
            {"info": {"agent_info": {"llm": "m"}}, "simulations": []},
            "missing field 'info.environment_info.domain_name'",
        ),
        (
            {"info": {"agent_info": {"llm": "m"}, "domain": "airline"}},
            "missing field 'simulations'",
        ),
        (
            {"info": {"agent_info": {"llm": "m"}, "domain": "airline"}, "simulations": {}},
            "field 'simulations' must be a list, got dict",
        ),
    ],
)
def test_a_file_that_is_not_tau2_is_refused_naming_file_and_field(
    tmp_path: Path, content: object, message: str
) -> None:
    path = write(tmp_path, "other.json", content)

    with pytest.raises(Tau2FormatError, match=message) as raised:
        read_file(path)
    assert path in str(raised.value)


def test_a_bad_file_among_good_ones_sends_nothing(tmp_path: Path) -> None:
    good = write(tmp_path, "good.json", tiny_file([tiny_simulation("run-a")]))
    bad = write(tmp_path, "bad.json", {"info": {}, "simulations": []})

    code, spans, out, err = run_import([good, bad])

    assert code == 2
    assert spans == []
    assert f"{bad}: not a τ²-bench results file: missing field 'info.agent_info'" in err
    assert "nothing was sent" in err
    assert out == ""


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.json")

    code, spans, _, err = run_import([missing])

    assert (code, spans) == (2, [])
    assert f"{missing}: cannot read the file" in err


@pytest.mark.parametrize("cost", [-0.5, float("inf"), "0.02", True])
def test_a_call_with_an_invalid_cost_is_skipped(tmp_path: Path, cost: object) -> None:
    simulation = tiny_simulation("run-a")
    simulation["messages"][2]["cost"] = cost
    # json.dumps writes inf as Infinity, which Python's json reads back as inf.
    path = write(tmp_path, "cost.json", tiny_file([simulation]))

    code, spans, out, _ = run_import([path])

    assert code == 0
    assert len(by_kind(spans)["llm"]) == 1
    assert (
        "1 x assistant message with an invalid 'cost' (first at simulations[0].messages[2])" in out
    )
