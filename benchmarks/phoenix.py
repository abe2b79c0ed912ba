"""A peer side by side: Arize Phoenix and agentledger given the same OTLP spans.

Both run on loopback as their own processes, one after the other so that neither takes CPU
from the other: Phoenix (``arize-phoenix`` from PyPI, in a venv of its own,
``.venv-phoenix``) and ``agentledger serve`` on a temporary chDB store. Each receives the
same OTLP/HTTP protobuf requests, sent from this process with a few in flight at once: agent
runs of a run span, three step spans and one llm-call span per step. The llm spans carry agentledger's
attributes, the GenAI ones and the OpenInference ones that Phoenix reads for model and
token counts, so that both price them.

Measured, in one run of this module:

- **stored spans per second**: spans sent over the seconds from the first request until the
  server's own count shows every span stored. Phoenix answers 200 before it stores, so its
  count comes from GraphQL ``getProjectByName { recordCount }``; agentledger's from
  ``SELECT count() FROM spans`` through ``POST /api/v1/sql``.
- **"cost by model"**: the median time of ten answers of each server's own query for it,
  after one warm-up: Phoenix's GraphQL ``topModelsByCost`` with each model's cost summary,
  agentledger's ``GET /api/v1/metrics?group_by=model``. Both answers are in the note, to
  show that they price the same spans alike.

Phoenix stores about 190 spans/s on a 2-core machine, so the span count is kept modest.
"""

from __future__ import annotations

import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from agentledger.ledger import EXPORT_BATCH_SPANS
from agentledger.schemas import attributes as attr
from benchmarks.servers import agentledger_command, free_port, server

REPO_ROOT = Path(__file__).resolve().parent.parent
PHOENIX_VENV = REPO_ROOT / ".venv-phoenix"
#: Pinned so that reruns compare against the same peer; the version in RESULTS.md.
PHOENIX_REQUIREMENT = "arize-phoenix==20.26.1"
PROJECT = "agentledger-bench"
PROTOBUF = "application/x-protobuf"
#: Runs to send: 7 spans each (a run, three steps, three llm calls). Phoenix stores about
#: 190 spans/s, so the full run's 14,000 spans take it over a minute.
TRACES = {False: 2_000, True: 300}
STEPS_PER_RUN = 3
#: Spans per request: as our SDK's exporter batches them.
SPANS_PER_REQUEST = EXPORT_BATCH_SPANS
QUERY_REPEATS = 10
#: Requests in flight at once, to each server.
SENDERS = 4
#: Models that both price.
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")
STORE_TIMEOUT_SECONDS = {False: 600.0, True: 180.0}


# --- the spans ----------------------------------------------------------------------------


def _value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=str(value))


def _attributes(values: dict[str, object]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in values.items()]


def build_requests(traces: int, seed: int = 11) -> tuple[list[bytes], int, dict[str, int]]:
    """Serialized OTLP requests for ``traces`` agent runs.

    Returns:
        The request bodies, the number of spans in them, and the llm calls per model.
    """
    rng = random.Random(seed)
    now_ns = time.time_ns()
    spans: list[Span] = []
    calls_per_model = dict.fromkeys(MODELS, 0)
    for index in range(traces):
        trace_id = rng.randbytes(16)
        run_id = trace_id.hex()
        run_span_id = rng.randbytes(8)
        start = now_ns - 3_600_000_000_000 + index * 1_000_000_000
        workflow = ("support", "triage")[index % 2]
        run_attributes = {
            attr.SPAN_KIND: attr.KIND_RUN,
            attr.RUN_ID: run_id,
            attr.WORKFLOW: workflow,
            attr.OPERATION_NAME: attr.OPERATION_INVOKE_AGENT,
            attr.AGENT_NAME: workflow,
            "openinference.span.kind": "AGENT",
        }
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=run_span_id,
                name=f"invoke_agent {workflow}",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start,
                end_time_unix_nano=start + 900_000_000,
                attributes=_attributes(run_attributes),
            )
        )
        for step in range(STEPS_PER_RUN):
            step_span_id = rng.randbytes(8)
            step_name = ("classify", "draft", "review")[step]
            model = MODELS[(index + step) % len(MODELS)]
            calls_per_model[model] += 1
            tier = {"gpt-4o-mini": "small", "gpt-4.1-mini": "mid", "gpt-4o": "frontier"}[model]
            step_start = start + step * 300_000_000
            scope = {
                attr.RUN_ID: run_id,
                attr.WORKFLOW: workflow,
                attr.STEP_NAME: step_name,
                attr.STEP_ID: step_span_id.hex(),
                attr.ATTEMPT: 1,
                attr.TIER: tier,
            }
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=step_span_id,
                    parent_span_id=run_span_id,
                    name=f"step {step_name}",
                    kind=Span.SPAN_KIND_INTERNAL,
                    start_time_unix_nano=step_start,
                    end_time_unix_nano=step_start + 280_000_000,
                    attributes=_attributes(
                        {
                            attr.SPAN_KIND: attr.KIND_STEP,
                            **scope,
                            "openinference.span.kind": "CHAIN",
                        }
                    ),
                )
            )
            prompt = 800 + rng.randrange(2_000)
            completion = 50 + rng.randrange(400)
            llm_attributes = {
                attr.SPAN_KIND: attr.KIND_LLM,
                **scope,
                attr.OPERATION_NAME: attr.OPERATION_CHAT,
                attr.PROVIDER_NAME: "openai",
                attr.REQUEST_MODEL: model,
                attr.RESPONSE_MODEL: model,
                attr.INPUT_TOKENS: prompt,
                attr.OUTPUT_TOKENS: completion,
                "openinference.span.kind": "LLM",
                "llm.system": "openai",
                "llm.provider": "openai",
                "llm.model_name": model,
                "llm.token_count.prompt": prompt,
                "llm.token_count.completion": completion,
                "llm.token_count.total": prompt + completion,
            }
            spans.append(
                Span(
                    trace_id=trace_id,
                    span_id=rng.randbytes(8),
                    parent_span_id=step_span_id,
                    name=f"chat {model}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=step_start + 10_000_000,
                    end_time_unix_nano=step_start + 250_000_000,
                    attributes=_attributes(llm_attributes),
                )
            )

    resource = _attributes(
        {attr.SERVICE_NAME: "bench-agent", "openinference.project.name": PROJECT}
    )
    bodies = []
    for first in range(0, len(spans), SPANS_PER_REQUEST):
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource={"attributes": resource},
                    scope_spans=[
                        ScopeSpans(
                            scope={"name": "agentledger-bench"},
                            spans=spans[first : first + SPANS_PER_REQUEST],
                        )
                    ],
                )
            ]
        )
        bodies.append(request.SerializeToString())
    return bodies, len(spans), calls_per_model


# --- processes ----------------------------------------------------------------------------


def ensure_phoenix() -> Path:
    """The ``phoenix`` command of ``.venv-phoenix``, installing it there on first use.

    Phoenix brings a large stack of its own (web server, SQL, its own OpenTelemetry
    pins), so it gets a venv of its own: agentledger's environment stays as users get it.
    """
    command = PHOENIX_VENV / "bin" / "phoenix"
    python = PHOENIX_VENV / "bin" / "python"
    wanted = PHOENIX_REQUIREMENT.split("==")[1]
    if command.exists():
        probe = subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m; print(m.version('arize-phoenix'))",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.stdout.strip() == wanted:
            return command
    print(f"[phoenix] installing {PHOENIX_REQUIREMENT} into {PHOENIX_VENV} ...", flush=True)
    base_python = getattr(sys, "_base_executable", None) or sys.executable
    if not python.exists():
        subprocess.run([base_python, "-m", "venv", str(PHOENIX_VENV)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            PHOENIX_REQUIREMENT,
        ],
        check=True,
    )
    return command


# --- measuring ----------------------------------------------------------------------------


def ingest(
    client: httpx.Client,
    url: str,
    bodies: Sequence[bytes],
    expected: int,
    count: Callable[[], int],
    timeout: float,
) -> tuple[float, float]:
    """Send every body, then poll ``count`` until it reaches ``expected``.

    Returns:
        Seconds until every request was answered, and until every span was stored.
    """
    def send(body: bytes) -> None:
        answer = client.post(url, content=body, headers={"Content-Type": PROTOBUF})
        if answer.status_code != 200:
            raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:300]}")

    started = time.perf_counter()
    # A few requests in flight, as an SDK's exporters across an agent fleet would send them.
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        list(pool.map(send, bodies))
    accepted = time.perf_counter() - started
    deadline = time.monotonic() + timeout
    while True:
        stored = count()
        if stored >= expected:
            return accepted, time.perf_counter() - started
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: {stored} of {expected} spans stored after {timeout} s")
        time.sleep(0.05)


def median_seconds(call: Callable[[], object], repeats: int = QUERY_REPEATS) -> float:
    """Median wall time of ``call`` over ``repeats`` calls, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


_COUNT_QUERY = "query($name: String!) { getProjectByName(name: $name) { id recordCount } }"
_COST_QUERY = """
query($name: String!, $projectId: ID!, $start: DateTime!) {
  getProjectByName(name: $name) {
    topModelsByCost(timeRange: {start: $start}) {
      name
      costSummary(projectId: $projectId, timeRange: {start: $start}) {
        total { cost tokens }
      }
    }
  }
}"""


def graphql(client: httpx.Client, url: str, query: str, variables: dict[str, Any]) -> Any:
    """One GraphQL query; its ``data``, or an error naming what Phoenix said."""
    answer = client.post(url, json={"query": query, "variables": variables})
    answer.raise_for_status()
    payload = answer.json()
    if payload.get("errors"):
        raise RuntimeError(f"Phoenix GraphQL errors: {payload['errors']}")
    return payload["data"]


def measure_phoenix(
    workdir: Path, bodies: Sequence[bytes], spans: int, quick: bool
) -> dict[str, Any]:
    """Ingest into Phoenix and time its cost by model; spans/s, seconds and costs."""
    phoenix = ensure_phoenix()
    port, grpc_port = free_port(), free_port()
    env = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        # The gRPC receiver binds every interface whatever the host says: move it aside.
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": str(workdir / "phoenix"),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    }
    base = f"http://127.0.0.1:{port}"
    with (
        server("phoenix", [str(phoenix), "serve"], env, f"{base}/healthz", workdir / "phoenix.log"),
        httpx.Client(timeout=60.0) as client,
    ):
        url = f"{base}/graphql"

        def count() -> int:
            project = graphql(client, url, _COUNT_QUERY, {"name": PROJECT})["getProjectByName"]
            return int(project["recordCount"]) if project else 0

        accepted, stored = ingest(
            client, f"{base}/v1/traces", bodies, spans, count, STORE_TIMEOUT_SECONDS[quick]
        )
        project_id = graphql(client, url, _COUNT_QUERY, {"name": PROJECT})["getProjectByName"]["id"]
        variables = {"name": PROJECT, "projectId": project_id, "start": "2000-01-01T00:00:00Z"}

        def cost_by_model() -> dict[str, float]:
            data = graphql(client, url, _COST_QUERY, variables)["getProjectByName"]
            return {
                row["name"]: float(row["costSummary"]["total"]["cost"] or 0.0)
                for row in data["topModelsByCost"]
            }

        # Phoenix prices spans after storing them; wait until every model has a cost.
        deadline = time.monotonic() + 60
        costs = cost_by_model()
        while set(costs) != set(MODELS) and time.monotonic() < deadline:
            time.sleep(0.5)
            costs = cost_by_model()
        query_seconds = median_seconds(cost_by_model)
        floor_seconds = median_seconds(lambda: graphql(client, url, "{ __typename }", {}))
    return {
        "accepted": accepted,
        "stored": stored,
        "query": query_seconds,
        "costs": costs,
        "floor": floor_seconds,
    }


def measure_agentledger(
    workdir: Path, bodies: Sequence[bytes], spans: int, quick: bool
) -> dict[str, Any]:
    """Ingest into ``agentledger serve`` and time its cost by model."""
    port = free_port()
    command = agentledger_command(port, workdir / "agentledger-store")
    env = {**os.environ, "AGENTLEDGER_EVALUATE_ALERTS": "false"}
    base = f"http://127.0.0.1:{port}"
    with (
        server("agentledger", command, env, f"{base}/healthz", workdir / "agentledger.log"),
        httpx.Client(timeout=120.0) as client,
    ):

        def count() -> int:
            answer = client.post(f"{base}/api/v1/sql", json={"sql": "SELECT count() FROM spans"})
            answer.raise_for_status()
            return int(answer.json()["rows"][0][0])

        accepted, stored = ingest(
            client, f"{base}/v1/traces", bodies, spans, count, STORE_TIMEOUT_SECONDS[quick]
        )

        def cost_by_model() -> dict[str, float]:
            answer = client.get(f"{base}/api/v1/metrics", params={"group_by": "model"})
            answer.raise_for_status()
            return {row["model"]: float(row["cost_usd"] or 0.0) for row in answer.json()}

        costs = cost_by_model()
        query_seconds = median_seconds(cost_by_model)

        def trivial() -> None:
            answer = client.post(f"{base}/api/v1/sql", json={"sql": "SELECT 1"})
            answer.raise_for_status()

        floor_seconds = median_seconds(trivial)
    return {
        "accepted": accepted,
        "stored": stored,
        "query": query_seconds,
        "costs": costs,
        "floor": floor_seconds,
    }


def _costs_text(costs: dict[str, float]) -> str:
    return ", ".join(f"{model} ${cost:.4f}" for model, cost in sorted(costs.items()))


def run(quick: bool) -> list[dict[str, Any]]:
    """Both servers in turn on the same spans; ratios of stored spans/s and query time."""
    bodies, spans, calls_per_model = build_requests(TRACES[quick])
    workdir = Path(tempfile.mkdtemp(prefix="agentledger-bench-phoenix-"))
    try:
        ours = measure_agentledger(workdir, bodies, spans, quick)
        peer = measure_phoenix(workdir, bodies, spans, quick)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    our_rate, peer_rate = spans / ours["stored"], spans / peer["stored"]
    rate_ratio = our_rate / peer_rate
    query_ratio = peer["query"] / ours["query"]
    sent = (
        f"{spans:,} spans ({TRACES[quick]:,} runs: a run, {STEPS_PER_RUN} steps and "
        f"{STEPS_PER_RUN} llm calls each; {sum(calls_per_model.values()):,} llm calls) in "
        f"{len(bodies)} OTLP/HTTP protobuf requests, {SENDERS} in flight, to each"
    )
    return [
        {
            "name": "peer: stored spans/s vs Phoenix",
            "measures": "spans stored per second by agentledger over Phoenix's, same spans, "
            "same run",
            "value": rate_ratio,
            "unit": "x",
            "target": ">= 100 x",
            "met": rate_ratio >= 100,
            "note": f"{sent}. agentledger stored {our_rate:,.0f} spans/s (all answered after "
            f"{ours['accepted']:.2f} s, all stored after {ours['stored']:.2f} s); Phoenix "
            f"{PHOENIX_REQUIREMENT.split('==')[1]} stored {peer_rate:,.0f} spans/s (answered "
            f"after {peer['accepted']:.2f} s, stored after {peer['stored']:.2f} s). "
            + _rate_limit_note(rate_ratio, ours),
        },
        {
            "name": "peer: cost by model vs Phoenix",
            "measures": "Phoenix's time to answer cost by model over agentledger's (median of "
            f"{QUERY_REPEATS}); >= 1 is at least as fast",
            "value": query_ratio,
            "unit": "x",
            "target": ">= 1 x",
            "met": query_ratio >= 1,
            "note": f"agentledger GET /api/v1/metrics?group_by=model {ours['query'] * 1000:.1f} "
            f"ms; Phoenix GraphQL topModelsByCost with costSummary {peer['query'] * 1000:.1f} "
            f"ms. Costs: agentledger {_costs_text(ours['costs'])}; Phoenix "
            f"{_costs_text(peer['costs'])}." + _query_limit_note(ours, peer),
        },
    ]


def _rate_limit_note(ratio: float, ours: dict[str, Any]) -> str:
    if ratio >= 100:
        return ""
    lag = ours["stored"] - ours["accepted"]
    return (
        f"Missed by {100 / ratio:.1f}x. What limits it is the collector's own ingest rate "
        "from one sender (each request is answered once its spans are decoded, mapped and "
        f"spooled) and the lag from the last answer until every span is queryable, {lag:.2f} "
        "s here; the ingest rows measure the rate with more spans and connections."
    )


def _query_limit_note(ours: dict[str, Any], peer: dict[str, Any]) -> str:
    if peer["query"] >= ours["query"]:
        return ""
    return (
        f" Missed by {ours['query'] / peer['query']:.1f}x. For scale, the cheapest request "
        f"into each: agentledger SELECT 1 through POST /api/v1/sql {ours['floor'] * 1000:.1f} "
        f"ms, Phoenix GraphQL {{ __typename }} {peer['floor'] * 1000:.1f} ms. The metrics "
        "API also checks that the rollups are up to date and computes every figure of the "
        "group (runs, verdicts, attempts, re-ingestion, retries), not only the cost."
    )
