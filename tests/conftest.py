"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


def start_collector(store_dir: Path, log_path: Path, env: dict[str, str] | None = None) -> Collector:
    port = free_port()
    log = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "agentledger.cli", "serve", "--port", str(port),
         "--store", str(store_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
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


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    """A collector shared by the tests of one module."""
    base = tmp_path_factory.mktemp("collector")
    running = start_collector(base / "store", base / "serve.log")
    yield running
    running.stop()
