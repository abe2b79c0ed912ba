"""Access: API keys per project and role, the dashboard's sign-in, and secrets kept out of logs."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from agentledger import Ledger
from agentledger.cli import main
from agentledger.collector.rollups import rollups_of
from agentledger.collector import auth
from agentledger.collector.server import create_app, serve
from agentledger.collector.settings import CollectorSettings, SettingsError
from agentledger.collector.store import Store
from agentledger.schemas.api import RunsQuery

JSON = {"content-type": "application/json"}
INGEST_A = "ingest-key-of-project-a-0001"
READ_A = "read-key-of-project-a-000001"
INGEST_B = "ingest-key-of-project-b-0001"
READ_B = "read-key-of-project-b-000001"
ADMIN_A = "admin-key-of-project-a-00001"
ADMIN_ALL = "admin-key-of-every-project-1"
KEYS_TOML = f"""
[[keys]]
name = "ingest-a"
key = "{INGEST_A}"
project = "a"
role = "ingest"

[[keys]]
name = "read-a"
key = "{READ_A}"
project = "a"
role = "read"

[[keys]]
name = "ingest-b"
key = "{INGEST_B}"
project = "b"
role = "ingest"

[[keys]]
name = "read-b"
# the digest of the key instead of the key: the file need not hold the secret
sha256 = "{auth.digest(READ_B)}"
project = "b"
role = "read"

[[keys]]
name = "admin-a"
key = "{ADMIN_A}"
project = "a"
role = "admin"

[[keys]]
name = "admin-all"
key = "{ADMIN_ALL}"
project = "*"
role = "admin"
"""
ALL_KEYS = (INGEST_A, READ_A, INGEST_B, READ_B, ADMIN_A, ADMIN_ALL)


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.toml"
    path.write_text(KEYS_TOML)
    return path


@pytest.fixture(scope="module")
def settings(keys_file: Path, tmp_path_factory: pytest.TempPathFactory) -> CollectorSettings:
    return CollectorSettings(
        keys_file=keys_file,
        spool_dir=tmp_path_factory.mktemp("access-spool"),
        session_secret="a-test-secret-of-enough-length",
    )


@pytest.fixture(scope="module")
def client(store: Store, settings: CollectorSettings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store=store), raise_server_exceptions=False) as c:
        yield c


def _batch(trace_id: str, run_id: str, project: str | None) -> bytes:
    resource: list[dict[str, Any]] = [{"key": "service.name", "value": {"stringValue": "s"}}]
    if project is not None:
        resource.append({"key": "agentledger.project", "value": {"stringValue": project}})
    span = {
        "traceId": trace_id,
        "spanId": trace_id[:16],
        "name": "run",
        "startTimeUnixNano": "1735689600000000000",
        "endTimeUnixNano": "1735689601000000000",
        "attributes": [
            {"key": "agentledger.span.kind", "value": {"stringValue": "run"}},
            {"key": "agentledger.run.id", "value": {"stringValue": run_id}},
            {"key": "agentledger.workflow", "value": {"stringValue": "wf"}},
        ],
    }
    document = {
        "resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [{"spans": [span]}]}]
    }
    return json.dumps(document).encode()


def _projects_of(store: Store, trace_id: str) -> list[str]:
    rollups_of(store).wait_for_writes()  # as readers do: what was acknowledged is stored
    rows = store.query(
        "SELECT project FROM spans FINAL WHERE trace_id = {t:String}", {"t": trace_id}
    )
    return [r[0] for r in rows]


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),  # no key
        (bearer("not-a-key-of-anyone-at-all"), 401),  # a wrong key
        ({"authorization": f"Basic {INGEST_A}"}, 401),  # not a bearer token
        (bearer(READ_A), 403),  # a read key used to ingest
    ],
    ids=["no-key", "wrong-key", "not-bearer", "read-key"],
)
def test_ingest_refusals(
    client: TestClient, store: Store, headers: dict[str, str], status: int
) -> None:
    trace_id = "0a" * 16
    answer = client.post(
        "/v1/traces", content=_batch(trace_id, "r", "a"), headers={**JSON, **headers}
    )

    assert answer.status_code == status
    assert answer.json()["code"] == (16 if status == 401 else 7)  # UNAUTHENTICATED, DENIED
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    assert _projects_of(store, trace_id) == []


def test_a_key_of_another_project_cannot_write_there(client: TestClient, store: Store) -> None:
    trace_id = "0b" * 16

    answer = client.post(
        "/v1/traces", content=_batch(trace_id, "r", "a"), headers={**JSON, **bearer(INGEST_B)}
    )

    assert answer.status_code == 403
    assert "'a'" in answer.json()["message"] and "'b'" in answer.json()["message"]
    assert _projects_of(store, trace_id) == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (bearer("not-a-key-of-anyone-at-all"), 401),
        (bearer(INGEST_A), 403),  # an ingest key used to read
    ],
    ids=["no-key", "wrong-key", "ingest-key"],
)
def test_read_refusals(client: TestClient, headers: dict[str, str], status: int) -> None:
    assert client.get("/api/v1/runs", headers=headers).status_code == status
    assert client.get("/api/v1/metrics", headers=headers).status_code == status


def test_a_key_of_another_project_cannot_read_there(client: TestClient) -> None:
    answer = client.get("/api/v1/runs", params={"project": "a"}, headers=bearer(READ_B))

    assert answer.status_code == 403
    assert "'a'" in answer.json()["detail"]


def test_outcomes_for_another_project_are_refused(client: TestClient) -> None:
    verdict = {"run_id": "r", "outcome": "correct", "project": "a"}

    refused = client.post("/api/v1/outcomes", json=[verdict], headers=bearer(INGEST_B))
    by_reader = client.post("/api/v1/outcomes", json=[verdict], headers=bearer(READ_A))
    accepted = client.post("/api/v1/outcomes", json=[verdict], headers=bearer(INGEST_A))

    assert (refused.status_code, by_reader.status_code, accepted.status_code) == (403, 403, 200)


def test_sql_needs_an_admin_key_of_every_project(client: TestClient) -> None:
    body = {"sql": "SELECT 1 AS one"}

    statuses = {
        name: client.post("/api/v1/sql", json=body, headers=bearer(key)).status_code
        for name, key in [("read", READ_A), ("admin-a", ADMIN_A), ("admin-all", ADMIN_ALL)]
    }

    assert statuses == {"read": 403, "admin-a": 403, "admin-all": 200}


def test_liveness_stays_open(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200


# --- what keys may do --------------------------------------------------------------------------


def test_ingest_gives_resources_without_a_project_the_keys_project(
    client: TestClient, store: Store
) -> None:
    trace_id = "0c" * 16

    answer = client.post(
        "/v1/traces", content=_batch(trace_id, "run-c", None), headers={**JSON, **bearer(INGEST_B)}
    )

    assert answer.status_code == 200
    assert _projects_of(store, trace_id) == ["b"]


def test_reads_are_limited_to_the_keys_project(client: TestClient) -> None:
    for trace_id, run_id, key, project in [
        ("0d" * 16, "run-of-a", INGEST_A, "a"),
        ("0e" * 16, "run-of-b", INGEST_B, "b"),
    ]:
        answer = client.post(
            "/v1/traces", content=_batch(trace_id, run_id, project), headers={**JSON, **bearer(key)}
        )
        assert answer.status_code == 200

    def run_ids(key: str) -> set[str]:
        answer = client.get("/api/v1/runs", headers=bearer(key))
        assert answer.status_code == 200
        return {run["run_id"] for run in answer.json()["runs"]}

    assert "run-of-a" in run_ids(READ_A) and "run-of-b" not in run_ids(READ_A)
    assert "run-of-b" in run_ids(READ_B) and "run-of-a" not in run_ids(READ_B)
    detail = client.get("/api/v1/runs/run-of-a", headers=bearer(READ_B))
    assert detail.status_code == 404  # read as project b, where no such run exists
    own = client.get("/api/v1/runs/run-of-a", params={"project": "a"}, headers=bearer(READ_A))
    assert own.status_code == 200


def test_the_scoped_reader_replaces_any_project_with_the_keys() -> None:
    seen: list[tuple[str, Any]] = []

    class Reader:
        def runs(self, query: RunsQuery) -> None:
            seen.append(("runs", query.project))

        def run(self, run_id: str, project: str = "default") -> None:
            seen.append(("run", project))

        def workflows(self, project: str = "default") -> None:
            seen.append(("workflows", project))

    reader = auth.scoped_reader(Reader())
    with auth.acting_as(auth.Principal("k", "b", "read")):
        reader.runs(RunsQuery(project="a"))
        reader.run("x", "a")
        reader.run("x", project="a")
        reader.workflows()
    with auth.acting_as(auth.Principal("k", "*", "admin")):
        reader.workflows("a")

    assert seen == [
        ("runs", "b"),
        ("run", "b"),
        ("run", "b"),
        ("workflows", "b"),
        ("workflows", "a"),
    ]


# --- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_sends_strangers_to_the_sign_in_form(client: TestClient) -> None:
    answer = client.get("/dashboard/", follow_redirects=False)

    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")
    form = client.get("/login")
    assert form.status_code == 200 and 'name="key"' in form.text


@pytest.mark.parametrize(
    ("key", "status"),
    [("not-a-key-of-anyone-at-all", 401), (INGEST_A, 403)],
    ids=["wrong-key", "ingest-key"],
)
def test_sign_in_refuses_keys_that_may_not_read(client: TestClient, key: str, status: int) -> None:
    answer = client.post("/login", data={"key": key, "next": "/dashboard/"}, follow_redirects=False)

    assert answer.status_code == status
    assert "set-cookie" not in answer.headers


def test_sign_in_with_a_read_key_sets_a_secure_session_cookie(
    settings: CollectorSettings, store: Store, tmp_path: Path
) -> None:
    app = create_app(settings.model_copy(update={"spool_dir": tmp_path}), store=store)
    with TestClient(app) as fresh:
        answer = fresh.post(
            "/login", data={"key": READ_A, "next": "/dashboard/"}, follow_redirects=False
        )

        cookie = answer.headers["set-cookie"]
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/"
        assert cookie.startswith(f"{auth.SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert READ_A not in cookie  # the cookie holds a signed digest, never the key
        assert fresh.get("/dashboard/", follow_redirects=False).status_code == 200
        assert fresh.get("/api/v1/runs").status_code == 200  # the session reads the API too

        fresh.cookies.set(auth.SESSION_COOKIE, fresh.cookies[auth.SESSION_COOKIE] + "x")
        assert fresh.get("/dashboard/", follow_redirects=False).status_code == 303


def test_sign_in_never_redirects_to_another_site(client: TestClient) -> None:
    answer = client.post(
        "/login", data={"key": READ_A, "next": "https://evil.example/"}, follow_redirects=False
    )

    assert answer.headers["location"] == "/dashboard/"


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_a_non_loopback_address_without_keys_refuses_to_start(host: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not a loopback address.*AGENTLEDGER_KEYS_FILE"):
        create_app(CollectorSettings(host=host, store=str(tmp_path / "never-opened")))
    assert not (tmp_path / "never-opened").exists()


def test_serve_on_a_public_address_without_keys_exits_1_saying_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        code = serve(host="0.0.0.0", port=0, store=str(tmp_path / "store"))

    assert code == 1
    assert "no API keys are configured" in caplog.text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('key = "short"\nproject = "a"\nrole = "read"', "at least 16 characters, got one of 5"),
        (f'key = "{READ_A}"\nproject = "a"\nrole = "owner"', "role 'owner'"),
        (f'key = "{READ_A}"\nrole = "read"', "project None"),
        ('project = "a"\nrole = "read"', "exactly one of 'key' and 'sha256'"),
    ],
)
def test_a_bad_keys_file_names_the_entry_and_field_but_not_the_key(
    tmp_path: Path, entry: str, message: str
) -> None:
    path = tmp_path / "keys.toml"
    path.write_text("[[keys]]\n" + entry + "\n")

    with pytest.raises(SettingsError, match=r"keys\[0\]") as raised:
        auth.KeyRing.from_file(path)

    assert message in str(raised.value)
    assert READ_A not in str(raised.value) and "'short'" not in str(raised.value)


def test_no_key_ever_reaches_the_logs(
    store: Store, settings: CollectorSettings, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    app = create_app(settings.model_copy(update={"spool_dir": tmp_path}), store=store)
    with caplog.at_level(logging.DEBUG), TestClient(app) as c:
        for key in (*ALL_KEYS, "not-a-key-of-anyone-at-all"):
            c.post(
                "/v1/traces", content=_batch("0f" * 16, "r", "a"), headers={**JSON, **bearer(key)}
            )
            c.get("/api/v1/runs", params={"project": "b"}, headers=bearer(key))
            c.post("/login", data={"key": key})

    assert caplog.records  # the refusals and sign-ins were logged...
    for key in (*ALL_KEYS, "not-a-key-of-anyone-at-all"):
        assert key not in caplog.text  # ...without the key


# --- clients ----------------------------------------------------------------------------------


@pytest.fixture
def live_server(store: Store, settings: CollectorSettings, tmp_path: Path) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings.model_copy(update={"spool_dir": tmp_path}), store=store)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _runs_of(store: Store, run_id: str) -> list[str]:
    rollups_of(store).wait_for_writes()  # as readers do: what was acknowledged is stored
    rows = store.query(
        "SELECT DISTINCT project FROM spans FINAL WHERE run_id = {r:String}", {"r": run_id}
    )
    return [r[0] for r in rows]


def test_the_sdk_sends_its_api_key(live_server: str, store: Store) -> None:
    ledger = Ledger("agent", endpoint=live_server, api_key=INGEST_A)
    with ledger.run("wf", run_id="sdk-key-run") as run:
        run.set_outcome("correct")
    assert ledger.flush(10)
    ledger.shutdown()

    assert _runs_of(store, "sdk-key-run") == ["a"]


def test_client_commands_take_the_key_from_an_option_or_the_environment(
    live_server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AGENTLEDGER_API_KEY", raising=False)
    demo = ["demo", "--runs", "1", "--endpoint", live_server]

    refused = main(demo)
    by_option = main([*demo, "--api-key", INGEST_A])
    monkeypatch.setenv("AGENTLEDGER_API_KEY", INGEST_A)
    by_environment = main(demo)

    assert refused != 0
    assert (by_option, by_environment) == (0, 0)
    assert INGEST_A not in capsys.readouterr().out + capsys.readouterr().err


def test_prometheus_metrics_are_limited_to_the_keys_project_too(client: TestClient) -> None:
    other = client.get("/metrics", params={"project": "a"}, headers=bearer(READ_B))
    own = client.get("/metrics", headers=bearer(READ_B))

    assert other.status_code == 403
    assert own.status_code == 200
    assert 'project="a"' not in own.text
