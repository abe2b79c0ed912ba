"""Ingest benchmarks of issue 8: OTLP/HTTP end to end, the in-process floor, bytes per call.

    .venv/bin/python -m benchmarks.ingest [--quick] [--spans N]

End to end: ``agentledger serve`` runs in a subprocess on a fresh chDB directory and a free
loopback port; a separate load-generator process pre-encodes ExportTraceServiceRequest
bodies of 512 spans (runs of the SDK's shape: a run span, step spans, llm spans with tiers,
models, tokens, cached tokens and costs) and posts them over several keep-alive
connections. Throughput is counted until a ``count()`` through ``POST /api/v1/sql`` sees
every span, so rows acknowledged but not yet queryable do not count.

The floor: the same bodies decoded and mapped by the collector's ingest workers, spooled and
inserted through its writer, without HTTP: what the server could reach if HTTP and asyncio
cost nothing. Storage: bytes of the ``spans`` table's active parts per stored llm call.

Each result is a dict (name, measures, value, unit, target, met, note) for
``benchmarks/run.py``; run alone, the module prints them as a table.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from agentledger.schemas import attributes as attr

BATCH_SPANS = 512
QUICK_SPANS = 51_200
FULL_SPANS = 512_000
CONNECTIONS = 4
TARGET_SPANS_PER_S = 50_000
TARGET_FLOOR_SHARE = 0.5
TARGET_RSS_MB = 500

# A run: one run span, STEPS step spans, CALLS llm spans per step.
STEPS = 4
CALLS = 4
# Step name, tier, provider, model, (input, output, cache read, cache write, reasoning) tokens.
_STEP_SHAPES = (
    ("plan", "frontier", "anthropic", "claude-sonnet-4-5", (6_200, 900, 4_096, 0, 0)),
    ("retrieve", "small", "openai", "gpt-4o-mini", (2_300, 180, 1_024, 0, 0)),
    ("draft", "mid", "openai", "gpt-4.1-mini", (9_800, 1_400, 6_144, 0, 0)),
    ("review", "frontier", "openai", "o3", (12_400, 2_100, 8_192, 0, 1_600)),
)
_COMPLEXITY = ("low", "high", "low", "medium")
_WORKFLOWS = ("support", "triage", "procurement", "digest")

# Stand-ins replaced per body (bytes.replace), so that any number of distinct bodies costs
# one encoding: 12 of the 16 trace-id bytes, and 24 characters of the run id.
_TRACE_MARK = b"\xfe\xed\xfa\xce\xca\xfe\xba\xbe\xde\xad\xc0\xde"
_RUN_MARK = "QZQZQZQZQZQZQZQZQZQZQZQZ"


def _kv(key: str, value: str | float | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def template_body(spans: int = BATCH_SPANS, start_ns: int = 1_785_000_000_000_000_000) -> bytes:
    """One encoded request of ``spans`` spans whose trace and run ids are still stand-ins.

    Every span of a trace (one run) shares the trace id; half the llm spans report their
    cost, the others are priced by the collector from genai-prices.
    """
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        [
            _kv(attr.SERVICE_NAME, "bench-agent"),
            _kv(attr.SERVICE_VERSION, "1.4.2"),
            _kv(attr.DEPLOYMENT_ENVIRONMENT, "production"),
            _kv(attr.PROJECT, "bench"),
        ]
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "agentledger"
    per_run = 1 + STEPS * (1 + CALLS)
    made = 0
    run = 0
    while made < spans:
        trace_id = _TRACE_MARK + run.to_bytes(4, "big")
        run_id = f"run-{_RUN_MARK}-{run:05d}"
        workflow = _WORKFLOWS[run % len(_WORKFLOWS)]
        run_start = start_ns + run * 60_000_000_000
        counter = [0]

        def add(
            name: str,
            parent: bytes,
            begin: int,
            end: int,
            attributes: list[KeyValue],
            trace_id: bytes = trace_id,
            counter: list[int] = counter,
        ) -> bytes:
            counter[0] += 1
            span_id = counter[0].to_bytes(8, "big")
            span = scope.spans.add(
                trace_id=trace_id,
                span_id=span_id,
                parent_span_id=parent,
                name=name,
                kind=1,
                start_time_unix_nano=begin,
                end_time_unix_nano=end,
            )
            span.status.code = 1
            span.attributes.extend(attributes)
            return span_id

        run_attrs = [
            _kv(attr.SPAN_KIND, attr.KIND_RUN),
            _kv(attr.RUN_ID, run_id),
            _kv(attr.WORKFLOW, workflow),
            _kv(attr.OPERATION_NAME, attr.OPERATION_INVOKE_AGENT),
            _kv(attr.AGENT_NAME, workflow + "-agent"),
            _kv(attr.BUDGET_TOKENS, 200_000),
            _kv(attr.BUDGET_USD, 2.5),
        ]
        run_span = add("run " + workflow, b"", run_start, run_start + 50_000_000_000, run_attrs)
        for step_index, (step, tier, provider, model, tokens) in enumerate(_STEP_SHAPES[:STEPS]):
            step_start = run_start + step_index * 12_000_000_000
            common = [
                _kv(attr.RUN_ID, run_id),
                _kv(attr.WORKFLOW, workflow),
                _kv(attr.STEP_NAME, step),
                _kv(attr.STEP_ID, f"{run_id}/{step}"),
                _kv(attr.TIER, tier),
                _kv(attr.ATTEMPT, 1),
                _kv(attr.TASK_COMPLEXITY, _COMPLEXITY[step_index]),
                _kv(attr.TASK_SENSITIVITY, "internal"),
                _kv(attr.TASK_CONTEXT, "medium"),
            ]
            step_attrs = [_kv(attr.SPAN_KIND, attr.KIND_STEP), *common]
            step_attrs.append(_kv(attr.ATTEMPT_ACCEPTED, True))
            step_span = add(
                "step " + step, run_span, step_start, step_start + 11_000_000_000, step_attrs
            )
            for call in range(CALLS):
                call_start = step_start + call * 2_500_000_000
                grow = 1 + (run * 7 + call * 3) % 11 / 10
                inp, out, cache_read, cache_write, reasoning = (int(n * grow) for n in tokens)
                call_attrs = [
                    _kv(attr.SPAN_KIND, attr.KIND_LLM),
                    *common,
                    _kv(attr.OPERATION_NAME, attr.OPERATION_CHAT),
                    _kv(attr.PROVIDER_NAME, provider),
                    _kv(attr.REQUEST_MODEL, model),
                    _kv(attr.RESPONSE_MODEL, model),
                    _kv(attr.INPUT_TOKENS, inp),
                    _kv(attr.OUTPUT_TOKENS, out),
                    _kv(attr.CACHE_READ_TOKENS, cache_read),
                    _kv(attr.CACHE_WRITE_TOKENS, cache_write),
                ]
                if reasoning:
                    call_attrs.append(_kv(attr.REASONING_TOKENS, reasoning))
                if call % 2 == 0:
                    call_attrs.append(_kv(attr.COST_USD, round(inp * 3e-6 + out * 1.5e-5, 9)))
                add("chat " + model, step_span, call_start, call_start + 2_000_000_000, call_attrs)
                made += 1
            made += 1
        made += 1
        run += 1
    del scope.spans[spans:]  # the last run is cut at the batch size, as an exporter would
    del per_run
    return request.SerializeToString()


def make_bodies(count: int, first: int = 1) -> list[bytes]:
    """``count`` distinct bodies: the template with its stand-ins replaced by body numbers."""
    template = template_body()
    bodies = []
    for number in range(first, first + count):
        body = template.replace(_TRACE_MARK, number.to_bytes(12, "big"))
        bodies.append(body.replace(_RUN_MARK.encode(), f"{number:024x}".encode()))
    return bodies


def llm_spans_per_body() -> int:
    """How many of a body's spans are llm calls (the rest are run and step spans)."""
    request = ExportTraceServiceRequest.FromString(template_body())
    spans = request.resource_spans[0].scope_spans[0].spans
    kind_llm = _kv(attr.SPAN_KIND, attr.KIND_LLM)
    return sum(1 for span in spans if kind_llm in span.attributes)


# --- the load generator (a separate process) ----------------------------------------------


def _post_all(port: int, bodies: list[bytes], connections: int) -> dict[str, Any]:
    """Post every body over ``connections`` keep-alive connections; latencies and timings."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_index = [0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/x-protobuf"}
        mine: list[float] = []
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= len(bodies):
                break
            began = time.perf_counter()
            try:
                conn.request("POST", "/v1/traces", bodies[index], headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"body {index}: {exc!r}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                continue
            mine.append(time.perf_counter() - began)
            if response.status != 200:
                errors.append(f"body {index}: HTTP {response.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.time()
    cpu_began = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "started": started,
        "finished": time.time(),
        "latencies": latencies,
        "errors": errors,
        "cpu_seconds": time.process_time() - cpu_began,
    }


def _load_generator(port: int, count: int, connections: int, queue: Any, go: Any) -> None:
    """Child process: encode first (off the clock), then post and report through ``queue``."""
    bodies = make_bodies(count)
    queue.put({"ready": True})
    go.wait()
    queue.put(_post_all(port, bodies, connections))


# --- the server ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _sql(port: int, sql: str) -> list[list[Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        payload = json.dumps({"sql": sql})
        conn.request("POST", "/api/v1/sql", payload, {"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"SQL {sql!r} failed: HTTP {response.status} {body[:300]!r}")
    rows: list[list[Any]] = json.loads(body)["rows"]
    return rows


def _warm_up(port: int) -> None:
    """Post one empty export, which starts the collector's ingest workers."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/traces", b"", {"Content-Type": "application/x-protobuf"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"the warm-up export failed: HTTP {response.status}")


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MB; psutil does not report a peak."""
    return _status_mb(pid).get("VmHWM", float("nan"))


def _status_mb(pid: int) -> dict[str, float]:
    """The memory lines of ``/proc/PID/status`` in MB (VmHWM, VmRSS, RssAnon, RssFile)."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                found[name] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return found


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (``/proc/PID/stat``), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent outside idle and iowait so far (``/proc/stat``)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``, whichever of its threads started them."""
    found: list[int] = []
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(child) for child in path.read_text().split())
        except OSError:
            continue
    return found


class _MemorySampler:
    """Samples the resident memory of a process and of its children (the ingest workers).

    VmHWM gives the peak of one process but not its parts: file-backed pages (the code of
    chDB's 300 MB library, shared with the page cache) and anonymous memory (the heap of
    Python and of the ClickHouse engine) are told apart from the samples, every
    ``interval`` seconds; the workers' are added up apart from the serving process's.
    """

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.peak_anon_mb = 0.0
        self.peak_file_mb = 0.0
        self.peak_workers_mb = 0.0
        self.peak_total_mb = 0.0
        self._pid = pid
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            status = _status_mb(self._pid)
            workers = sum(_status_mb(child).get("VmRSS", 0.0) for child in _children(self._pid))
            self.peak_anon_mb = max(self.peak_anon_mb, status.get("RssAnon", 0.0))
            self.peak_file_mb = max(self.peak_file_mb, status.get("RssFile", 0.0))
            self.peak_workers_mb = max(self.peak_workers_mb, workers)
            self.peak_total_mb = max(self.peak_total_mb, status.get("VmRSS", 0.0) + workers)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _start_server(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = dict(os.environ)
    for name in ("AGENTLEDGER_KEYS_FILE", "AGENTLEDGER_TIER_MAP", "AGENTLEDGER_PRICE_FILE"):
        env.pop(name, None)
    env["AGENTLEDGER_EVALUATE_ALERTS"] = "0"
    env["AGENTLEDGER_SPOOL_DIR"] = str(work / "spool")
    exe = Path(sys.executable).with_name("agentledger")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "agentledger.cli"]
    command += ["serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--store", str(work / "store")]
    log = open(work / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"agentledger serve exited: {(work / 'server.log').read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return server, port
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("agentledger serve did not answer /healthz within 60 s")


def end_to_end(total_spans: int, connections: int = CONNECTIONS) -> dict[str, Any]:
    """Run the server and the load generator; spans/s until queryable, p99, peak RSS."""
    count = max(1, total_spans // BATCH_SPANS)
    work = Path(tempfile.mkdtemp(prefix="agentledger-bench-"))
    server, port = _start_server(work)
    try:
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        go = context.Event()
        args = (port, count, connections, queue, go)
        loader = context.Process(target=_load_generator, args=args)
        loader.start()
        queue.get(timeout=600)  # bodies encoded
        _warm_up(port)  # the ingest workers start with the first export, off the clock
        baseline_mb = _peak_rss_mb(server.pid)
        sampler = _MemorySampler(server.pid)
        workers_cpu = {pid: _cpu_seconds(pid) for pid in _children(server.pid)}
        server_cpu, busy = _cpu_seconds(server.pid), _machine_busy_seconds()
        go.set()
        posted = queue.get(timeout=3600)
        loader.join(60)
        expected = count * BATCH_SPANS
        stored = 0
        while True:
            stored = int(_sql(port, "SELECT count() FROM spans")[0][0])
            stored_at = time.time()
            if stored >= expected or stored_at - posted["finished"] > 120:
                break
            time.sleep(0.05)
        sampler.stop()
        cpu = {
            "server": _cpu_seconds(server.pid) - server_cpu,
            # A worker started (or restarted) during the run counts from its start.
            "workers": sum(
                _cpu_seconds(pid) - workers_cpu.get(pid, 0.0) for pid in _children(server.pid)
            ),
            "loader": posted["cpu_seconds"],
            "machine": _machine_busy_seconds() - busy,
        }
        latencies = sorted(posted["latencies"])
        elapsed = stored_at - posted["started"]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else 0
        return {
            "spans": expected,
            "stored": stored,
            "seconds": elapsed,
            "spans_per_s": stored / elapsed,
            "p50_ms": statistics.median(latencies) * 1000 if latencies else 0.0,
            "p99_ms": p99 * 1000,
            "peak_rss_mb": _peak_rss_mb(server.pid),
            "idle_rss_mb": baseline_mb,
            "peak_anon_mb": sampler.peak_anon_mb,
            "peak_workers_mb": sampler.peak_workers_mb,
            "cpu_us_per_span": {name: value / expected * 1e6 for name, value in cpu.items()},
            "cores": os.cpu_count() or 1,
            "peak_total_mb": sampler.peak_total_mb,
            "peak_file_mb": sampler.peak_file_mb,
            "errors": posted["errors"][:3],
            "error_count": len(posted["errors"]),
        }
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(work, ignore_errors=True)


# --- the floor (in a child process: chDB holds one store per process) ------------------------


def _floor_child(total_spans: int, queue: Any) -> None:
    queue.put(floor(total_spans))


def floor(total_spans: int) -> dict[str, Any]:
    """Decode, map, spool and insert every body without HTTP.

    Stage rates are measured on their own first, in this process (decode, map, spool, insert
    of 512-row batches); then the pipeline runs as the server's does: ingest workers decode
    and map, the spool takes each body, and the writer thread batches the inserts.
    """
    from agentledger.collector import otlp
    from agentledger.collector.auth import ALL_PROJECTS, Principal
    from agentledger.collector.ingest_workers import IngestWorkers
    from agentledger.collector.mapping import SPAN_COLUMNS, SpanMapper
    from agentledger.collector.settings import CollectorSettings
    from agentledger.collector.spool import DurableWriter, Spool, SpooledBody

    def _spooled(body: bytes) -> SpooledBody:
        # As the server spools an export of an open (keyless) collector.
        return SpooledBody(body, {"media": otlp.PROTOBUF, "project": ALL_PROJECTS})

    from agentledger.collector.store import Store
    from agentledger.collector.writer import RowWriter

    count = max(1, total_spans // BATCH_SPANS)
    bodies = make_bodies(count)
    spans = count * BATCH_SPANS
    work = Path(tempfile.mkdtemp(prefix="agentledger-floor-"))
    store = Store(str(work / "store"))
    store.migrate()
    try:
        mapper = SpanMapper()
        sample = bodies[: max(1, min(len(bodies), 40))]
        sample_spans = len(sample) * BATCH_SPANS

        began = time.perf_counter()
        decoded = [otlp.decode_protobuf(body) for body in sample]
        decode_s = time.perf_counter() - began
        began = time.perf_counter()
        batches = [mapper.map(request) for request in decoded]
        map_s = time.perf_counter() - began
        spool = Spool(work / "stage-spool")
        began = time.perf_counter()
        for batch, body in zip(batches, sample, strict=True):
            spool.append(batch.spans, batch.outcomes, source=_spooled(body))
        spool_s = time.perf_counter() - began
        spool.close()
        began = time.perf_counter()
        for batch in batches:
            store.insert("spans", batch.spans, SPAN_COLUMNS)
        insert_s = time.perf_counter() - began
        store.command("TRUNCATE TABLE spans")

        # The pipeline as the server runs it: ingest workers decode and map, the spool
        # takes the body, the writer batches the inserts; as many bodies in flight as
        # there are workers, twice over.
        spool = Spool(work / "spool")
        writer = RowWriter(store)
        durable = DurableWriter(spool, writer)
        span_types = store.arrow_types("spans")
        settings = CollectorSettings(store=str(work / "store"))
        workers = IngestWorkers(
            settings, [span_types[name] for name in SPAN_COLUMNS], settings.ingest_workers
        )
        principal = Principal("bench", ALL_PROJECTS, "ingest")

        async def one(body: bytes) -> None:
            decoded = await workers.decode(body, None, otlp.PROTOBUF, 2**26, principal)
            await durable.write(decoded.spans, decoded.outcomes, source=_spooled(body))

        async def pipeline() -> None:
            await workers.decode(bodies[0], None, otlp.PROTOBUF, 2**26, principal)  # start-up
            began = time.perf_counter()
            in_flight = 2 * max(1, settings.ingest_workers)
            for start in range(0, len(bodies), in_flight):
                await asyncio.gather(*(one(b) for b in bodies[start : start + in_flight]))
            await asyncio.to_thread(writer.flush)
            timings["floor_s"] = time.perf_counter() - began

        timings: dict[str, float] = {}
        asyncio.run(pipeline())
        workers.close()
        writer.close()
        floor_s = timings["floor_s"]
        (stored,) = store.query("SELECT count() FROM spans")[0]
        spool.close()

        store.command("OPTIMIZE TABLE spans FINAL")
        (table_bytes,) = store.query(
            "SELECT sum(bytes_on_disk) FROM system.parts "
            "WHERE active AND database = currentDatabase() AND table = 'spans'"
        )[0]
        (llm_calls,) = store.query("SELECT count() FROM spans WHERE kind = 'llm'")[0]
        return {
            "spans": spans,
            "stored": int(stored),
            "spans_per_s": spans / floor_s,
            "decode_per_s": sample_spans / decode_s,
            "map_per_s": sample_spans / map_s,
            "spool_per_s": sample_spans / spool_s,
            "insert512_per_s": sample_spans / insert_s,
            "table_bytes": int(table_bytes),
            "llm_calls": int(llm_calls),
        }
    finally:
        store.close()
        shutil.rmtree(work, ignore_errors=True)


def _in_child(target: Any, *args: Any) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    result: dict[str, Any] = queue.get(timeout=3600)
    child.join(60)
    return result


# --- results -------------------------------------------------------------------------------


def _row(
    name: str,
    measures: str,
    value: float,
    unit: str,
    target: str = "",
    met: bool | None = None,
    note: str = "",
) -> dict[str, Any]:
    return {
        "name": name,
        "measures": measures,
        "value": float(value),
        "unit": unit,
        "target": target,
        "met": met,
        "note": note,
    }


def _cpu_note(e2e: dict[str, Any]) -> str:
    """Where the CPU went: what limits ingest on a machine with few cores."""
    per_span = e2e["cpu_us_per_span"]
    busy = per_span["machine"] * e2e["spans_per_s"] / 1e6 / e2e["cores"]
    if busy >= 0.9:
        verdict = (
            f"so the rate is what the CPU allows ({e2e['cores']} cores / "
            f"{per_span['machine']:.0f} µs of CPU per span)"
        )
    else:
        verdict = "so the CPU was not the limit"
    return (
        f"CPU per span: serving process {per_span['server']:.0f} µs (HTTP, spool, the "
        f"chDB insert and its merges, rollups), ingest workers {per_span['workers']:.0f} µs "
        f"(decode, map, Arrow), load generator {per_span['loader']:.0f} µs; the "
        f"{e2e['cores']} cores were {busy:.0%} busy, {verdict}"
    )


def run(quick: bool, spans: int | None = None) -> list[dict[str, Any]]:
    """Run the end-to-end, floor and storage benchmarks; one result dict per figure."""
    total = spans or (QUICK_SPANS if quick else FULL_SPANS)
    e2e = end_to_end(total)
    low = _in_child(_floor_child, total)
    scale = f"{e2e['spans']:,} spans in {e2e['spans'] // BATCH_SPANS} requests of {BATCH_SPANS}"
    errors = f"; {e2e['error_count']} failed requests: {e2e['errors']}" if e2e["errors"] else ""
    complete = "" if e2e["stored"] >= e2e["spans"] else f"; only {e2e['stored']:,} stored"
    rate = e2e["spans_per_s"]
    share = rate / low["spans_per_s"]
    per_call = low["table_bytes"] / max(1, low["llm_calls"])
    return [
        _row(
            "ingest end to end",
            "Spans per second from the first POST until a count query sees them all, "
            f"{CONNECTIONS} keep-alive connections from a separate process.",
            rate,
            "spans/s",
            f">= {TARGET_SPANS_PER_S:,}",
            rate >= TARGET_SPANS_PER_S,
            f"{scale}, {e2e['seconds']:.1f} s, {rate / TARGET_SPANS_PER_S:.0%} of the target"
            f"{complete}{errors}; {_cpu_note(e2e)}",
        ),
        _row(
            "ingest p99 latency",
            "99th percentile of one 512-span request's round trip (p50 in the note).",
            e2e["p99_ms"],
            "ms",
            note=f"p50 {e2e['p50_ms']:.1f} ms",
        ),
        _row(
            "collector peak memory",
            "Peak resident memory of the agentledger serve process and its ingest workers "
            "together (sampled every 50 ms).",
            e2e["peak_total_mb"],
            "MB",
            f"<= {TARGET_RSS_MB}",
            e2e["peak_total_mb"] <= TARGET_RSS_MB,
            f"serving process: {e2e['idle_rss_mb']:.0f} MB before the first request, "
            f"{e2e['peak_rss_mb']:.0f} MB at its peak (VmHWM), of which at the most "
            f"{e2e['peak_anon_mb']:.0f} MB anonymous (Python and the ClickHouse engine's heap) "
            f"and {e2e['peak_file_mb']:.0f} MB file-backed (mostly the code of chDB's library, "
            "about 290 MB, mapped from disk and shared with the page cache); ingest workers "
            f"{e2e['peak_workers_mb']:.0f} MB together",
        ),
        _row(
            "ingest floor",
            "Spans per second decoded and mapped by the ingest workers, spooled and inserted, "
            "no HTTP.",
            low["spans_per_s"],
            "spans/s",
            note=(
                f"stages alone: decode {low['decode_per_s']:,.0f}/s, map "
                f"{low['map_per_s']:,.0f}/s, spool {low['spool_per_s']:,.0f}/s, insert of "
                f"512-row batches {low['insert512_per_s']:,.0f}/s"
            ),
        ),
        _row(
            "end to end / floor",
            "The end-to-end rate as a share of the floor.",
            share * 100,
            "%",
            f">= {TARGET_FLOOR_SHARE:.0%}",
            share >= TARGET_FLOOR_SHARE,
        ),
        _row(
            "storage per llm call",
            "Bytes on disk of the spans table's active parts (after OPTIMIZE FINAL) per llm "
            "call; run and step spans are counted in.",
            per_call,
            "bytes",
            note=f"{low['table_bytes']:,} bytes for {low['llm_calls']:,} llm calls "
            f"of {low['stored']:,} spans",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SPANS:,} spans")
    parser.add_argument("--spans", type=int, default=None, help="spans to send")
    args = parser.parse_args(argv)
    for result in run(args.quick, args.spans):
        met = {True: "met", False: "MISSED", None: ""}[result["met"]]
        print(
            f"{result['name']:<24} {result['value']:>12,.1f} {result['unit']:<8} "
            f"{result['target']:<10} {met:<6} {result['note']}"
        )
    return 0


if __name__ == "__main__":
    # Run through the importable module, so that the spawned children find the functions.
    import importlib

    sys.exit(importlib.import_module("benchmarks.ingest").main())
