"""Instants are UTC with nanosecond precision, whatever the time zone of the host.

The collector, and the process that reads its store afterwards, run under a ``TZ`` far from
UTC. The instants below are chosen so that a local date would differ from the UTC date:
20:00Z on 1 January is 01:30 on 2 January in Kolkata, and 03:00Z on 2 January is 19:00 on
1 January in Los Angeles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.accounting.conftest import metrics, post_spans, strict_json
from tests.collector.otlp_payloads import ResourceSpec, SpanSpec
from tests.conftest import start_collector

# 2025-01-01T20:00:00.123456789Z and 2025-01-02T03:00:00.000000001Z, in ns since the epoch:
# 1 January 2025 00:00Z is 1,735,689,600 s; plus 20 h = 72,000 s, or 27 h = 97,200 s.
A_START_NS = 1_735_761_600_123_456_789
A_END_NS = A_START_NS + 1_500_000_000
B_START_NS = 1_735_786_800_000_000_001
B_END_NS = B_START_NS + 999_999_999
# A verdict at 2025-01-02T02:00:00+05:30, which is 2025-01-01T20:30:00Z = 1,735,763,400 s.
VERDICT_AT = "2025-01-02T02:00:00+05:30"
VERDICT_NS = 1_735_763_400_000_000_000

_READ_BACK = """
import json, time
from agentledger.collector.store import Store
store = Store({dsn!r})
spans = store.query(
    "SELECT span_id, toUnixTimestamp64Nano(start_time), toUnixTimestamp64Nano(end_time) "
    "FROM spans FINAL")
outcomes = store.query(
    "SELECT run_id, toUnixTimestamp64Nano(decided_at) FROM outcomes FINAL WHERE source = 'tz'")
print(json.dumps({{
    "offset": time.strftime("%z"),
    "spans": {{(s.decode() if isinstance(s, bytes) else s): [int(a), int(b)]
              for s, a, b in spans}},
    "outcomes": {{str(r): int(d) for r, d in outcomes}},
}}))
"""


def _run(trace_id: str, span_id: str, run_id: str, start_ns: int, end_ns: int) -> SpanSpec:
    return SpanSpec(
        span_id,
        trace_id,
        name="run",
        start_ns=start_ns,
        end_ns=end_ns,
        attributes={
            "agentledger.span.kind": "run",
            "agentledger.run.id": run_id,
            "agentledger.workflow": "tz",
        },
    )


@pytest.mark.parametrize(
    ("zone", "offset"), [("Asia/Kolkata", "+0530"), ("America/Los_Angeles", "-0800")]
)
def test_instants_survive_a_non_utc_host(tmp_path: Path, zone: str, offset: str) -> None:
    store_dir = tmp_path / "store"
    collector = start_collector(store_dir, tmp_path / "serve.log", env={"TZ": zone})
    try:
        post_spans(
            collector,
            [
                ResourceSpec(
                    [
                        _run("a1" * 16, "a100000000000001", "tz-a", A_START_NS, A_END_NS),
                        _run("b1" * 16, "b100000000000001", "tz-b", B_START_NS, B_END_NS),
                    ]
                )
            ],
        )
        verdict = {"run_id": "tz-a", "outcome": "correct", "source": "tz", "timestamp": VERDICT_AT}
        posted = httpx.post(collector.url + "/api/v1/outcomes", json=[verdict], timeout=30)
        assert strict_json(posted) == {"accepted": 1}

        page = strict_json(collector.get("/api/v1/runs", workflow="tz"))
        starts = {r["run_id"]: r["start_time"] for r in page["runs"]}
        # The API speaks microseconds: the nanoseconds are cut, never rounded into the future.
        assert starts == {
            "tz-a": "2025-01-01T20:00:00.123456+00:00",
            "tz-b": "2025-01-02T03:00:00+00:00",
        }
        assert datetime.fromisoformat(starts["tz-a"]) == datetime(
            2025, 1, 1, 20, 0, 0, 123_456, tzinfo=UTC
        )

        days = {r["day"]: r["runs"] for r in metrics(collector, group_by="day", workflow="tz")}
        assert days == {"2025-01-01": 1, "2025-01-02": 1}

        def runs_between(since: str, until: str) -> int:
            (row,) = metrics(collector, workflow="tz", since=since, until=until)
            return int(row["runs"])

        # The same instant in three spellings; a naive time is UTC.
        assert runs_between("2025-01-02T01:30:00+05:30", "2025-01-01T20:00:01Z") == 1
        assert runs_between("2025-01-01T12:00:00-08:00", "2025-01-01T20:00:01Z") == 1
        assert runs_between("2025-01-01T20:00:00", "2025-01-01T20:00:01") == 1
        # A starts 789 ns after .123456 s: compared in ns, an until of .123456 leaves it out.
        assert runs_between("2025-01-01T19:00:00Z", "2025-01-01T20:00:00.123456Z") == 0
        assert runs_between("2025-01-01T19:00:00Z", "2025-01-01T20:00:00.123457Z") == 1
    finally:
        collector.stop()

    read = subprocess.run(
        [sys.executable, "-c", _READ_BACK.format(dsn=str(store_dir))],
        capture_output=True,
        check=True,
        timeout=120,
        env={**os.environ, "TZ": zone},
    )
    stored = json.loads(read.stdout.decode().strip().splitlines()[-1])
    assert stored["offset"] == offset  # the reader really ran in that zone
    assert stored["spans"] == {
        "a100000000000001": [A_START_NS, A_END_NS],
        "b100000000000001": [B_START_NS, B_END_NS],
    }
    assert stored["outcomes"] == {"tz-a": VERDICT_NS}
