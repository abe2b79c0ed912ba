"""Ingest workers: export bodies decoded and mapped in other processes, as Arrow blocks."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from agentledger.collector import otlp
from agentledger.collector.auth import ALL_PROJECTS, Principal
from agentledger.collector.ingest_workers import IngestWorkers, WorkersUnavailable
from agentledger.collector.mapping import SPAN_COLUMNS
from agentledger.collector.settings import CollectorSettings
from agentledger.collector.store import Store
from tests.collector.otlp_payloads import ResourceSpec, SpanSpec, proto_request

OPEN = Principal("test", ALL_PROJECTS, "ingest")
LIMIT = 1 << 20
LLM = {
    "agentledger.span.kind": "llm",
    "agentledger.run.id": "run-w",
    "gen_ai.request.model": "house-model-7",
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.output_tokens": 200,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store(f"chdb://{tmp_path_factory.mktemp('workers-store')}")
    opened.migrate()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def workers(store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IngestWorkers]:
    # The worker must read the collector's tier map and price file itself.
    folder = tmp_path_factory.mktemp("worker-settings")
    (folder / "tiers.json").write_text(json.dumps({"house-model-7": "mid"}))
    (folder / "prices.toml").write_text(
        textwrap.dedent(
            """
            [models."house-model-7"]
            input_mtok = 2.0
            output_mtok = 10.0
            """
        )
    )
    settings = CollectorSettings(
        tier_map=folder / "tiers.json", price_file=folder / "prices.toml", ingest_workers=1
    )
    types = store.arrow_types("spans")
    pool = IngestWorkers(settings, [types[name] for name in SPAN_COLUMNS], 1)
    yield pool
    pool.close()


def _body(*span_ids: str) -> bytes:
    spans = [SpanSpec(span_id, attributes=LLM) for span_id in span_ids]
    return proto_request([ResourceSpec(spans)])


def test_a_worker_maps_with_the_collectors_tier_map_and_price_file(
    workers: IngestWorkers, store: Store
) -> None:
    body = _body("00000000000000a1", "00000000000000a2")

    decoded = asyncio.run(workers.decode(body, None, otlp.PROTOBUF, LIMIT, OPEN))

    assert decoded.span_count == 2 and decoded.rejected == []
    assert decoded.plain is body  # a plain body is not sent back and forth
    rows = decoded.spans.to_pylist()  # type: ignore[union-attr]
    assert [r["span_id"] for r in rows] == ["00000000000000a1", "00000000000000a2"]
    # 1,000 input tokens at $2 and 200 output tokens at $10 per million: $0.004.
    assert {(r["tier"], r["cost_usd"], r["cost_source"]) for r in rows} == {
        ("mid", Decimal("0.004"), "price-file")
    }
    store.insert_block("spans", decoded.spans)  # type: ignore[arg-type]
    stored = store.query("SELECT count(), sum(input_tokens) FROM spans WHERE run_id = 'run-w'")
    assert stored == [(2, 2_000)]


def test_a_gzipped_body_comes_back_decompressed(workers: IngestWorkers) -> None:
    body = _body("00000000000000b1")

    decoded = asyncio.run(workers.decode(gzip.compress(body), "gzip", otlp.PROTOBUF, LIMIT, OPEN))

    assert decoded.plain == body


def test_a_body_that_cannot_be_read_raises_the_decoders_error(workers: IngestWorkers) -> None:
    with pytest.raises(otlp.MalformedRequest, match="protobuf body cannot be decoded"):
        asyncio.run(workers.decode(b"\xff\xff\xff", None, otlp.PROTOBUF, LIMIT, OPEN))


def _workers() -> list[int]:
    """This process's children that are multiprocessing workers (not its resource tracker)."""
    pid = os.getpid()
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in command:
            found.append(int(child))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_a_worker_that_dies_fails_its_request_and_is_replaced(workers: IngestWorkers) -> None:
    asyncio.run(workers.decode(_body("00000000000000c1"), None, otlp.PROTOBUF, LIMIT, OPEN))
    before = _workers()
    assert before, "the worker did not start"

    async def decode_while_killed() -> None:
        task = asyncio.ensure_future(
            workers.decode(_body("00000000000000c2") * 20_000, None, otlp.PROTOBUF, 1 << 26, OPEN)
        )
        await asyncio.sleep(0.05)
        for child in before:
            os.kill(child, signal.SIGKILL)
        await task

    with pytest.raises(WorkersUnavailable, match="worker died"):
        asyncio.run(decode_while_killed())
    again = asyncio.run(workers.decode(_body("00000000000000c3"), None, otlp.PROTOBUF, LIMIT, OPEN))
    assert again.span_count == 1


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_workers_leave_when_their_serving_process_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, os, sys, time
        from agentledger.collector import otlp
        from agentledger.collector.auth import ALL_PROJECTS, Principal
        from agentledger.collector.ingest_workers import IngestWorkers
        from agentledger.collector.settings import CollectorSettings
        pool = IngestWorkers(CollectorSettings(), [], 2)
        asyncio.run(pool.decode(b"", None, otlp.PROTOBUF, 1024, Principal("t", "*", "ingest")))
        pid = os.getpid()
        print(open(f"/proc/{pid}/task/{pid}/children").read(), flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    children = [int(pid) for pid in parent.stdout.readline().split()]
    assert children, "the workers did not start"

    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in children if Path(f"/proc/{pid}").exists() and not _zombie(pid)]

    assert alive == []


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return False
