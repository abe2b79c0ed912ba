"""The serving process: OTLP/HTTP answers, the outcomes endpoint, and a real uvicorn server."""

from __future__ import annotations

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from agentledger.collector.rollups import rollups_of
from agentledger.collector.server import create_app
from agentledger.collector.settings import CollectorSettings
from agentledger.collector.store import Store
from tests.collector.otlp_payloads import ResourceSpec, SpanSpec, json_request, proto_request

JSON = {"content-type": "application/json"}
PROTOBUF = {"content-type": "application/x-protobuf"}
LLM = {
    "agentledger.span.kind": "llm",
    "agentledger.run.id": "run-1",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.output_tokens": 100,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    # One chDB directory per process at a time: the module's store is closed at its end.
    opened = Store(f"chdb://{tmp_path_factory.mktemp('server-store')}")
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(CollectorSettings(), store=store)) as test_client:
        yield test_client


def _rows(store: Store, trace_id: str) -> list[dict[str, Any]]:
    rollups_of(store).wait_for_writes()  # as readers do: what was acknowledged is stored
    rows = store.query_dicts(
        "SELECT * EXCEPT ingested_at FROM spans FINAL WHERE trace_id = {t:String} "
        "ORDER BY project, span_id",
        {"t": trace_id},
    )
    return rows


def _request(trace_id: str, *span_ids: str, project: str = "default") -> list[ResourceSpec]:
    spans = [SpanSpec(span_id, trace_id=trace_id, attributes=LLM) for span_id in span_ids]
    return [ResourceSpec(spans, attributes={"service.name": "a", "agentledger.project": project})]


def test_json_export_answers_an_empty_json_response_and_stores_lower_case_ids(
    client: TestClient, store: Store
) -> None:
    body = json_request(_request("A1" * 16, "B1B1B1B1B1B1B1B1"))

    answer = client.post("/v1/traces", content=body, headers=JSON)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}
    (row,) = _rows(store, "a1" * 16)
    assert row["span_id"] == b"b1b1b1b1b1b1b1b1"
    # gpt-4o-mini: 1,000 * 0.15 + 100 * 0.60 = 210 µ$
    assert (row["input_tokens"], str(row["cost_usd"])) == (1_000, "0.000210000000")


def test_protobuf_export_answers_protobuf(client: TestClient, store: Store) -> None:
    answer = client.post(
        "/v1/traces", content=proto_request(_request("a2" * 16, "b2" * 8)), headers=PROTOBUF
    )

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert not response.HasField("partial_success")
    assert len(_rows(store, "a2" * 16)) == 1


def test_json_partial_success_names_the_rejected_field(client: TestClient, store: Store) -> None:
    document = json.loads(json_request(_request("a3" * 16, "b3" * 8, "c3" * 8)))
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["traceId"] = (
        "W47/95gDgQPSabYzgT/GDA=="
    )

    answer = client.post("/v1/traces", content=json.dumps(document), headers=JSON)

    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "traceId 'W47/95gDgQPSabYzgT/GDA=='" in partial["errorMessage"]
    assert [r["span_id"] for r in _rows(store, "a3" * 16)] == [b"b3" * 8]


def test_protobuf_partial_success(client: TestClient, store: Store) -> None:
    body = proto_request(_request("a4" * 16, "b4" * 8, "c4c4c4"))

    answer = client.post("/v1/traces", content=body, headers=PROTOBUF)

    assert answer.status_code == 200
    response = ExportTraceServiceResponse.FromString(answer.content)
    assert response.partial_success.rejected_spans == 1
    assert "spanId 'c4c4c4'" in response.partial_success.error_message
    assert len(_rows(store, "a4" * 16)) == 1


def test_a_request_whose_every_span_is_invalid_is_400(client: TestClient, store: Store) -> None:
    body = json_request(_request("a5" * 16, "eee19b"))

    answer = client.post("/v1/traces", content=body, headers=JSON)

    assert answer.status_code == 400
    assert "spanId 'eee19b'" in answer.json()["message"]
    assert _rows(store, "a5" * 16) == []


@pytest.mark.parametrize(
    ("headers", "body", "status", "words"),
    [
        ({"content-type": "text/plain"}, b"{}", 415, "Content-Type 'text/plain'"),
        ({**JSON, "content-encoding": "br"}, b"{}", 415, "Content-Encoding 'br'"),
        ({**JSON, "content-encoding": "gzip"}, gzip.compress(b"{}")[:10] + b"junk", 400, "gzip"),
        (JSON, b"{not json", 400, "JSON"),
        (JSON, b'{"resourceSpans": 3}', 400, "resourceSpans"),
    ],
)
def test_unreadable_requests_get_a_status_naming_the_problem(
    client: TestClient, headers: dict[str, str], body: bytes, status: int, words: str
) -> None:
    answer = client.post("/v1/traces", content=body, headers=headers)

    assert answer.status_code == status
    assert words in answer.json()["message"]


def test_undecodable_protobuf_is_400_with_a_protobuf_status(client: TestClient) -> None:
    answer = client.post("/v1/traces", content=b"\x0a\xff\xff\xff", headers=PROTOBUF)

    assert answer.status_code == 400
    status = status_pb2.Status.FromString(answer.content)
    assert status.code == 3  # INVALID_ARGUMENT
    assert "protobuf" in status.message


def test_gzip_json_and_protobuf_store_the_same_rows_as_plain(
    client: TestClient, store: Store
) -> None:
    trace_id = "a6" * 16
    bodies = {
        "plain-json": (json_request(_request(trace_id, "b6" * 8, project="plain-json")), JSON),
        "gzip-json": (
            gzip.compress(json_request(_request(trace_id, "b6" * 8, project="gzip-json"))),
            JSON,
        ),
        "plain-proto": (
            proto_request(_request(trace_id, "b6" * 8, project="plain-proto")),
            PROTOBUF,
        ),
        "gzip-proto": (
            gzip.compress(proto_request(_request(trace_id, "b6" * 8, project="gzip-proto"))),
            PROTOBUF,
        ),
    }

    for project, (body, headers) in bodies.items():
        if project.startswith("gzip"):
            headers = {**headers, "content-encoding": "gzip"}
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200

    rows = _rows(store, trace_id)
    assert sorted(r["project"] for r in rows) == sorted(bodies)
    comparable = [
        {k: v for k, v in r.items() if k not in ("project", "resource_attributes")} for r in rows
    ]
    assert all(r == comparable[0] for r in comparable)


def test_posted_outcomes_are_stored_once_per_verdict(client: TestClient, store: Store) -> None:
    verdicts = [
        {
            "run_id": "run-o1",
            "outcome": "correct",
            "score": 0.9,
            "source": "judge",
            "timestamp": "2026-03-02T10:00:00+01:00",
        },
        {"run_id": "run-o1", "outcome": "incorrect"},
    ]

    first = client.post("/api/v1/outcomes", json=verdicts)
    again = client.post("/api/v1/outcomes", json=verdicts[:1])

    assert first.status_code == again.status_code == 200
    assert first.json() == {"accepted": 2}
    rollups_of(store).wait_for_writes()  # as readers do: what was acknowledged is stored
    rows = store.query_dicts(
        "SELECT outcome, score, source, toUnixTimestamp64Nano(decided_at) AS ns FROM outcomes "
        "FINAL WHERE run_id = 'run-o1' ORDER BY outcome"
    )
    assert len(rows) == 2  # the timestamped verdict posted twice is one row
    # 2026-03-02T09:00:00Z
    assert rows[0] == {
        "outcome": "correct",
        "score": 0.9,
        "source": "judge",
        "ns": 1_772_442_000_000_000_000,
    }
    assert (rows[1]["outcome"], rows[1]["source"]) == ("incorrect", "api")


@pytest.mark.parametrize(
    ("verdict", "loc", "value"),
    [
        ({"run_id": "r", "outcome": "maybe"}, ["body", 0, "outcome"], "maybe"),
        ({"run_id": "r", "outcome": "correct", "score": 2}, ["body", 0, "score"], 2),
        ({"run_id": "", "outcome": "correct"}, ["body", 0, "run_id"], ""),
        (
            {"run_id": "r", "outcome": "correct", "timestamp": "1960-01-01T00:00:00Z"},
            ["body", 0, "timestamp"],
            "1960-01-01T00:00:00+00:00",
        ),
    ],
)
def test_an_invalid_outcome_is_422_naming_the_field_and_value(
    client: TestClient, verdict: dict[str, Any], loc: list[Any], value: Any
) -> None:
    answer = client.post("/api/v1/outcomes", json=[verdict])

    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == loc
    assert error["input"] == value


def test_healthz_and_root_redirect(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    root = client.get("/", follow_redirects=False)
    assert root.status_code in (302, 307)
    assert root.headers["location"] == "/dashboard/"


def test_a_real_uvicorn_server_stores_what_it_acknowledged(store: Store) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(CollectorSettings(), store=store), log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        body = gzip.compress(proto_request(_request("a7" * 16, "b7" * 8, "c7" * 8)))

        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/traces",
            content=body,
            headers={**PROTOBUF, "content-encoding": "gzip"},
            timeout=30,
        )
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()

    assert answer.status_code == 200
    assert [r["span_id"] for r in _rows(store, "a7" * 16)] == [b"b7" * 8, b"c7" * 8]


def _serve(store_dir: Path, port: int) -> subprocess.Popen[bytes]:
    code = (
        "import sys; from agentledger.collector.server import serve; "
        f"sys.exit(serve(host='127.0.0.1', port={port}, store={str(store_dir)!r}))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_serve_exits_1_when_its_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        process = _serve(tmp_path / "store", taken.getsockname()[1])
        output, _ = process.communicate(timeout=120)

    assert process.returncode == 1, output.decode()


@pytest.mark.parametrize(
    ("stop", "returncode"),
    [
        (signal.SIGINT, 0),
        # uvicorn shuts down cleanly, then re-raises SIGTERM to end the process by it
        (signal.SIGTERM, -signal.SIGTERM),
    ],
)
def test_serve_runs_until_signalled_and_keeps_what_it_acknowledged(
    tmp_path: Path, stop: signal.Signals, returncode: int
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = _serve(tmp_path / "store", port)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        body = json_request(_request("a8" * 16, "b8" * 8))
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/traces", content=body, headers=JSON)
    finally:
        process.send_signal(stop)
        output, _ = process.communicate(timeout=60)

    assert answer.status_code == 200
    assert process.returncode == returncode, output.decode()
    assert b"Traceback" not in output
    count = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from agentledger.collector.store import Store; "
            f"print(Store({str(tmp_path / 'store')!r}).query('SELECT count() FROM spans')[0][0])",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert count.stdout.split()[-1] == b"1"


def test_the_tier_map_setting_gives_calls_their_tier(store: Store, tmp_path: Path) -> None:
    tiers = tmp_path / "tiers.json"
    tiers.write_text('{"gpt-4o-mini": "small"}')
    app = create_app(CollectorSettings(tier_map=tiers), store=store)

    with TestClient(app) as test_client:
        body = json_request(_request("a9" * 16, "b9" * 8))
        assert test_client.post("/v1/traces", content=body, headers=JSON).status_code == 200

    assert [r["tier"] for r in _rows(store, "a9" * 16)] == ["small"]


def test_the_query_api_and_dashboard_are_served_by_the_same_app(client: TestClient) -> None:
    assert client.get("/api/v1/runs").status_code == 200
    dashboard = client.get("/dashboard/")
    assert dashboard.status_code == 200
    assert dashboard.headers["content-type"].startswith("text/html")
