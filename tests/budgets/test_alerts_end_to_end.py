"""End to end: SDK runs -> ``agentledger serve`` with an alerts file -> our webhook on loopback.

Also checks ``/metrics`` against the API, ``/api/v1/budgets`` and ``agentledger alerts test``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import agentledger
from agentledger.collector.notify import Channel, Notification, Notifier
from tests.conftest import Collector, start_collector

CEILING = 10_000
WORKFLOW = "support-ticket"


class Receiver:
    """A webhook receiver on a loopback port that keeps every request it gets."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length), parse_float=Decimal)
                with receiver._lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self, state: str | None = None) -> list[dict[str, Any]]:
        """Our webhook's bodies (Apprise's have no state), of ``state`` if given."""
        with self._lock:
            return [
                body
                for _, body in self.requests
                if "state" in body and (state is None or body["state"] == state)
            ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


@pytest.fixture(scope="module")
def alerts_file(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Path:
    path = tmp_path_factory.mktemp("alerts") / "alerts.toml"
    path.write_text(
        f"""
interval_seconds = 0.5

[[channel]]
name = "test-hook"
webhook = "{receiver.url}"

[[rule]]
name = "support-run-tokens"
kind = "run_tokens"
workflow = "{WORKFLOW}"
threshold = {CEILING}
window = "7d"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("alerts-store") / "store"


def serve(store_dir: Path, alerts_file: Path) -> Collector:
    return start_collector(
        store_dir,
        store_dir.parent / "serve.log",
        env={"AGENTLEDGER_ALERTS_FILE": str(alerts_file)},
    )


def send_run(
    url: str,
    *,
    tokens_per_call: list[int],
    budget_tokens: int | None = None,
    model: str = "m-private",
    workflow: str = WORKFLOW,
) -> str:
    """One run of ``workflow``, one llm call per entry (three quarters input)."""
    ledger = agentledger.Ledger("alerts-e2e", endpoint=url)
    try:
        with ledger.run(workflow, budget_tokens=budget_tokens, new_trace=True) as run:
            for tokens in tokens_per_call:
                with run.step("answer", tier="small") as step, step.llm(model=model) as call:
                    call.record_usage(input_tokens=tokens * 3 // 4, output_tokens=tokens // 4)
            run.set_outcome("correct")
        assert ledger.flush(10)
    finally:
        ledger.shutdown()
    return run.run_id


def test_a_run_over_its_workflow_ceiling_is_notified_once_also_across_a_restart(
    receiver: Receiver, alerts_file: Path, store_dir: Path
) -> None:
    collector = serve(store_dir, alerts_file)
    try:
        # 4,000 + 4,000 + 4,000 = 12,000 tokens > 10,000; the budget makes it an SDK breach too.
        over = send_run(collector.url, tokens_per_call=[4_000] * 3, budget_tokens=CEILING)
        # 4,000 + 4,000 = 8,000 tokens: under the ceiling.
        under = send_run(collector.url, tokens_per_call=[4_000, 4_000], budget_tokens=CEILING)
        wait_for(lambda: len(receiver.bodies()) >= 1, "the first notification")
        # Let several more evaluations pass (every 0.5 s): none may send it again.
        time.sleep(3)
    finally:
        collector.stop()

    (headers, body) = receiver.requests[0]
    assert len(receiver.requests) == 1
    assert body["state"] == "firing"
    assert body["run_id"] == over
    assert body["workflow"] == WORKFLOW
    assert body["threshold"] == CEILING
    assert body["actual"] == 12_000
    assert body["rule"] == "support-run-tokens"
    assert f"run {over} of workflow '{WORKFLOW}' used 12,000 tokens" in body["message"]
    assert headers["Idempotency-Key"] == body["idempotency_key"]
    assert under not in [b["run_id"] for _, b in receiver.requests]

    # A restart reads the alert state back: the firing alert is not sent again. A new run over
    # the ceiling sent after the restart proves that evaluation runs again.
    collector = serve(store_dir, alerts_file)
    try:
        later = send_run(collector.url, tokens_per_call=[6_000, 6_000])
        wait_for(lambda: len(receiver.bodies()) >= 2, "the notification after the restart")
        time.sleep(2)
    finally:
        collector.stop()
    run_ids = [body["run_id"] for body in receiver.bodies()]
    assert run_ids == [over, later]


@pytest.fixture(scope="module")
def running(store_dir: Path, alerts_file: Path) -> Iterator[Collector]:
    collector = serve(store_dir, alerts_file)
    yield collector
    collector.stop()


def test_metrics_parse_and_equal_the_api(running: Collector) -> None:
    send_run(running.url, tokens_per_call=[1_000], model="gpt-4o-mini", workflow="priced")
    text = running.get("/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}

    def samples(name: str) -> dict[tuple[tuple[str, str], ...], float]:
        return {
            tuple(sorted((k, v) for k, v in sample.labels.items() if k != "project")): sample.value
            for sample in families[name].samples
            if sample.name in (name, name + "_total")
        }

    rows = running.get("/api/v1/metrics", group_by="workflow,tier").json(parse_float=Decimal)
    assert rows, "the store holds runs"
    runs = samples("agentledger_runs")
    correct = samples("agentledger_correct_runs")
    tokens = samples("agentledger_tokens")
    unpriced = samples("agentledger_unpriced_calls")
    spend = samples("agentledger_spend_usd")
    for row in rows:
        key = (("tier", row["tier"]), ("workflow", row["workflow"]))
        assert runs[key] == row["runs"]
        assert correct[key] == row["correct_runs"]
        assert unpriced[key] == row["unpriced_calls"]
        assert tokens[(("direction", "input"), *key)] == row["input_tokens"]
        assert tokens[(("direction", "output"), *key)] == row["output_tokens"]
        if row["cost_usd"] is None:
            assert key not in spend  # unknown is not zero
        else:
            assert spend[key] == pytest.approx(float(row["cost_usd"]), rel=1e-12)
    assert len(runs) == len(rows)
    # The gpt-4o-mini run has a known cost; the runs on m-private have none.
    priced = (("tier", "small"), ("workflow", "priced"))
    assert spend[priced] > 0
    assert (("tier", "small"), ("workflow", WORKFLOW)) not in spend

    report = running.get("/api/v1/budgets").json(parse_float=Decimal)
    breaches = samples("agentledger_budget_breached_runs")
    assert {dict(k)["workflow"]: v for k, v in breaches.items()} == {
        use["workflow"]: use["breached_runs"] for use in report["workflows"]
    }
    # Of the runs sent in this module, one went over its own 10,000-token budget.
    assert report["breached_runs"] == 1
    (breach,) = report["breaches"]
    assert (breach["tokens"], breach["budget_tokens"]) == (12_000, 10_000)
    assert breach["over_tokens"] is True
    firing = samples("agentledger_alerts_firing")
    assert firing == {(("rule", "support-run-tokens"),): 2.0}


def test_alerts_test_command_sends_a_test_notification(
    receiver: Receiver, alerts_file: Path
) -> None:
    before = len(receiver.bodies("test"))
    done = subprocess.run(
        [sys.executable, "-m", "agentledger.cli", "alerts", "test", "--config", str(alerts_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "test-hook: sent" in done.stdout
    (body,) = receiver.bodies("test")[before:]
    assert body["idempotency_key"].startswith("test-")


def test_alerts_test_command_fails_on_an_unreachable_channel(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    # Port 9 on loopback (discard) is closed on test machines: the POST is refused.
    path.write_text('[[channel]]\nwebhook = "http://127.0.0.1:9/hook"\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "agentledger.cli", "alerts", "test", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "FAILED" in done.stdout


def test_a_bad_alerts_file_stops_the_collector(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text('[[rule]]\nname = "x"\nkind = "run_tokens"\nthreshold = -1\n', "utf-8")
    with pytest.raises(RuntimeError, match=r"rule\.0\.threshold"):
        serve(tmp_path / "store", path)


def test_an_apprise_channel_delivers_title_message_and_key(receiver: Receiver) -> None:
    # Apprise's json:// service, pointed at our loopback receiver, stands in for Slack or mail.
    url = receiver.url.replace("http://", "json://")
    notifier = Notifier([Channel(name="chat", apprise=url)])
    now = datetime.now(UTC)
    notification = Notification(
        idempotency_key="k-123",
        state="firing",
        rule="support-run-tokens",
        kind="run_tokens",
        project="default",
        workflow=WORKFLOW,
        run_id="r-1",
        unit="tokens",
        threshold=Decimal(CEILING),
        actual=Decimal(12_000),
        window_seconds=None,
        fired_at=now,
        changed_at=now,
        message="run r-1 used 12,000 tokens",
    )
    before = len(receiver.requests)
    try:
        (delivery,) = notifier.send(notification)
    finally:
        notifier.close()
    assert delivery.ok, delivery.error
    (_, body), *_ = receiver.requests[before:]
    assert body["title"] == "[agentledger] FIRING: support-run-tokens"
    assert body["message"] == "run r-1 used 12,000 tokens\n\nidempotency key: k-123"
    assert body["type"] == "failure"
