"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Collector:
    """An ``agentledger serve`` process on a loopback port with its own chDB directory."""

    url: str
    store_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def start_collector(
    store_dir: Path, log_path: Path, env: dict[str, str] | None = None, store: str | None = None
) -> Collector:
    """Start ``agentledger serve`` on ``store_dir``, or on the ``store`` DSN when given."""
    port = free_port()
    log = log_path.open("ab")
    # A spool of its own beside the log: collectors never share one (see deploy/README.md).
    spool = {"AGENTLEDGER_SPOOL_DIR": str(log_path.with_suffix(".spool"))} if store else {}
    process = subprocess.Popen(
        [sys.executable, "-m", "agentledger.cli", "serve", "--port", str(port),
         "--store", store or str(store_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **spool, **(env or {})},
    )
    collector = Collector(f"http://127.0.0.1:{port}", store_dir, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"agentledger serve exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(collector.url + "/healthz", timeout=1).status_code == 200:
                return collector
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    collector.stop()
    raise RuntimeError(f"agentledger serve did not become healthy: {log_path.read_text()[-2000:]}")


@contextmanager
def server_database() -> Iterator[str]:
    """A fresh database on the server named by AGENTLEDGER_TEST_CLICKHOUSE_URL; its DSN.

    Skips the test when the variable is unset: CI runs the chDB path only.
    """
    url = os.environ.get("AGENTLEDGER_TEST_CLICKHOUSE_URL")
    if not url:
        pytest.skip("AGENTLEDGER_TEST_CLICKHOUSE_URL is not set: ClickHouse server path not run")
    import clickhouse_connect

    name = f"agentledger_test_{uuid.uuid4().hex[:12]}"
    admin = clickhouse_connect.get_client(dsn=url)
    admin.command(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(url)._replace(path="/" + name))
    finally:
        admin.command(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


@pytest.fixture(scope="module", params=["chdb", "server"])
def collector(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Collector]:
    """A collector shared by the tests of one module, on chDB and on a ClickHouse server."""
    base = tmp_path_factory.mktemp("collector")
    if request.param == "chdb":
        running = start_collector(base / "store", base / "serve.log")
        yield running
        running.stop()
        return
    with server_database() as dsn:
        running = start_collector(base / "store", base / "serve.log", store=dsn)
        yield running
        running.stop()
