"""Servers that a benchmark starts: a free loopback port, a process held until healthy.

Every server a benchmark starts listens on 127.0.0.1 only, and is stopped when its block
ends, whatever happened inside.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

START_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def agentledger_command(port: int, store: Path) -> list[str]:
    """``agentledger serve`` of this venv on ``127.0.0.1:port`` with the store ``store``."""
    executable = Path(sys.executable).with_name("agentledger")
    return [
        str(executable),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        str(store),
    ]


@contextmanager
def server(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    health_url: str,
    log: Path,
    *,
    start_timeout: float = START_TIMEOUT_SECONDS,
) -> Iterator[None]:
    """Run ``command`` for the block; enter it once ``health_url`` answers 200.

    The server's output goes to ``log``; when it exits before it is healthy, the end of
    that log is in the error.
    """
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command), env=dict(env), stdout=sink, stderr=subprocess.STDOUT, cwd=log.parent
        )
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                if process.poll() is not None:
                    tail = log.read_text(encoding="utf-8", errors="replace")[-2000:]
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
                try:
                    if httpx.get(health_url, timeout=2.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer {health_url} in {start_timeout} s")
                time.sleep(0.5)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
