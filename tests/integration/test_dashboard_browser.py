"""Every dashboard page in real headless Chromium, on a collector filled by the demo and the
τ²-bench import: the numbers shown equal the API's for the same filters, no page logs a
browser console error, and each page leaves a screenshot under ``test-artifacts/``.

Needs Debian's ``chromium`` and ``chromium-driver`` (``scripts/test`` installs them when
missing) and ``selenium`` (the ``test`` extra); without them the module is skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentledger.dashboard import formatting, slices
from agentledger.schemas.analysis import ReingestionReport, RetryReport, RoutingReport, TailReport
from agentledger.schemas.api import MetricsRow, RunPage
from tests.conftest import ROOT, SHARED_DATA, Collector, start_collector

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1800",
)
TAU2_FILES = sorted(
    str(p) for p in (SHARED_DATA / "tau2-bench-submissions").glob("*/trajectories/*.json")
)
DEMO_RUNS = 40

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium and chromium-driver are not installed (scripts/test installs them)",
)

# The rows of every table in the page body, as the browser renders their text.
TABLES_JS = """
return Array.from(document.querySelectorAll(arguments[0] + ' table')).map(
    t => Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.innerText.trim())));
"""


def cli(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentledger.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    base = tmp_path_factory.mktemp("browser")
    running = start_collector(base / "store", base / "serve.log")
    try:
        cli("demo", "--runs", str(DEMO_RUNS), "--endpoint", running.url)
        if TAU2_FILES:
            cli("import", "tau2", "--endpoint", running.url, *TAU2_FILES)
        _wait_until_stable(running)
        yield running
    finally:
        running.stop()


def _wait_until_stable(collector: Collector) -> None:
    """Ingest writes in batches: wait until two reads of the run count agree."""
    previous = -1
    for _ in range(120):
        total = collector.get("/api/v1/runs", limit=1).json()["total"]
        if total == previous and total > 0:
            return
        previous = total
        time.sleep(1.0)
    raise AssertionError("the run count did not settle")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="al-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def load(driver: Any, collector: Collector, path: str, ready_css: str, shot: str) -> list[Any]:
    """Open a page, wait until ``ready_css`` shows and nothing is loading, save a
    screenshot, and return the page's tables; fail on any console error."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(f"{collector.url}/dashboard/{path}")

    def ready(d: Any) -> bool:
        return bool(
            d.execute_script(
                "return document.querySelector(arguments[0]) !== null"
                " && document.querySelector('[data-dash-is-loading=\"true\"]') === null",
                ready_css,
            )
        )

    WebDriverWait(driver, 180, poll_frequency=0.5).until(ready)
    time.sleep(1.0)  # let plotly finish drawing before the screenshot
    driver.save_screenshot(str(ARTIFACTS / f"dashboard-{shot}.png"))
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], f"console errors on {path}: {errors}"
    return list(driver.execute_script(TABLES_JS, "main"))


def api(collector: Collector, path: str, **params: Any) -> Any:
    response = httpx.get(collector.url + path, params=params, timeout=300)
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def rows_by(table: list[list[str]], *keys: int) -> dict[tuple[str, ...], list[str]]:
    _header, *body = table
    return {tuple(row[k] for k in keys): row for row in body}


def column(table: list[list[str]], label: str) -> int:
    return table[0].index(label)


def test_overview_cards_equal_the_metrics_api(filled: Collector, browser: Any) -> None:
    (total,) = [MetricsRow.model_validate(r) for r in api(filled, "/api/v1/metrics")]
    load(browser, filled, "", ".al-card", "overview")
    cards = browser.execute_script(
        "return Array.from(document.querySelectorAll('.al-card')).map("
        "c => [c.querySelector('.al-card-label').innerText, c.querySelector('.al-card-value').innerText])"
    )
    shown = {label.strip().lower(): value.strip() for label, value in cards}
    assert shown["runs"] == formatting.count_text(total.runs)
    assert shown["spend"] == formatting.spend(total).text
    assert shown["cost per correct outcome"] == formatting.cost_per_correct_outcome(total).text
    assert shown["retry amplification"] == formatting.retry_amplification(total).text


@pytest.mark.parametrize("search", ["", "?workflow=support-ticket&tier=small"])
def test_steps_table_equals_the_metrics_api(filled: Collector, browser: Any, search: str) -> None:
    params = dict(p.split("=") for p in search.lstrip("?").split("&") if p)
    rows = [
        MetricsRow.model_validate(r)
        for r in api(filled, "/api/v1/metrics", group_by="step,tier", **params)
    ]
    tables = load(browser, filled, "steps" + search, "#analysis-body table", f"steps{len(params)}")
    shown = rows_by(tables[0], 0, 1)
    assert len(shown) == len(rows)
    runs, rate, cpco = (
        column(tables[0], c) for c in ("Runs", "Success rate", "Cost per correct outcome")
    )
    for row in rows:
        line = shown[(slices.step_label(row.step), slices.tier_label(row.tier))]
        assert line[runs] == formatting.count_text(row.runs)
        assert line[rate] == formatting.success_rate(row).text
        assert line[cpco] == formatting.cost_per_correct_outcome(row).text


def test_reingestion_table_equals_its_api(filled: Collector, browser: Any) -> None:
    report = ReingestionReport.model_validate(api(filled, "/api/v1/reingestion"))
    tables = load(browser, filled, "reingestion", "#analysis-body table", "reingestion")
    shown = rows_by(tables[0], 0, 1)
    for row in report.slices:
        line = shown[(slices.step_label(row.step), slices.tier_label(row.tier))]
        assert line[column(tables[0], "Input tokens")] == formatting.count_text(row.input_tokens)
        cost = formatting.usd(row.reingested_cost_usd, reason="").text
        assert line[column(tables[0], "Re-ingested cost")] == cost


def test_retries_table_equals_its_api(filled: Collector, browser: Any) -> None:
    report = RetryReport.model_validate(api(filled, "/api/v1/retries"))
    tables = load(browser, filled, "retries", "#analysis-body table", "retries")
    shown = rows_by(tables[0], 0, 1)
    assert len(shown) == len(report.slices)
    for row in report.slices:
        line = shown[(slices.step_label(row.step), slices.tier_label(row.tier))]
        assert line[column(tables[0], "Attempts")] == formatting.count_text(row.attempts)
        assert (
            line[column(tables[0], "Retry rate")]
            == formatting.percent(row.retry_rate, reason="").text
        )
        assert (
            line[column(tables[0], "Discarded cost")]
            == formatting.usd(row.discarded_cost_usd, reason="").text
        )


def test_runs_page_searches_like_its_api(filled: Collector, browser: Any) -> None:
    page = RunPage.model_validate(api(filled, "/api/v1/run_search", search="demo", limit=25))
    tables = load(browser, filled, "runs?search=demo", "#analysis-body table", "runs")
    shown = [row[0] for row in tables[0][1:]]
    assert shown == [
        run.run_id if len(run.run_id) <= 18 else run.run_id[:17] + "…" for run in page.runs
    ]
    assert (
        f"of {formatting.count_text(page.total)}"
        in browser.find_element("css selector", ".al-pager-line").text
    )


def test_tails_tables_equal_their_api(filled: Collector, browser: Any) -> None:
    report = TailReport.model_validate(api(filled, "/api/v1/tails"))
    tables = load(browser, filled, "tails", "#analysis-body table", "tails")
    shown = rows_by(tables[0], 0)
    for row in report.workflows:
        line = shown[(row.workflow,)]
        assert (
            line[column(tables[0], "Cost p95")] == formatting.usd(row.cost_p95_usd, reason="").text
        )
        assert line[column(tables[0], "Tokens p99")] == formatting.tokens(row.tokens_p99).text


def test_routing_table_equals_its_api(filled: Collector, browser: Any) -> None:
    report = RoutingReport.model_validate(api(filled, "/api/v1/routing"))
    tables = load(browser, filled, "routing", "#analysis-body table", "routing")
    lines = tables[0][1:]
    expected = [
        (
            cell.tier or "(no tier)",
            formatting.count_text(cell.calls),
            formatting.usd(cell.cost_per_correct_outcome_usd, reason="").text,
        )
        for row in report.rows
        for cell in row.tiers
    ]
    cpco = column(tables[0], "Cost per correct outcome")
    assert [(line[3], line[4], line[cpco]) for line in lines] == expected


@pytest.mark.parametrize("path", ["budgets", "runs/demo-7-00001", "nowhere"])
def test_other_pages_load_without_console_errors(
    filled: Collector, browser: Any, path: str
) -> None:
    load(browser, filled, path, "main h1, main .al-empty, main .al-section", path.replace("/", "-"))


def test_a_steps_cell_opens_the_runs_behind_it(filled: Collector, browser: Any) -> None:
    tables = load(browser, filled, "steps", "#analysis-body table", "steps-before-click")
    header, *body = tables[0]
    tier_at, runs_at = header.index("Tier"), header.index("Runs")
    index = next(i for i, line in enumerate(body) if line[tier_at] != slices.NO_TIER)
    step, tier, runs = body[index][0], body[index][tier_at], body[index][runs_at]
    links = browser.find_elements("css selector", "#analysis-body table tbody tr td a")
    links[index].click()

    def listed(d: Any) -> bool:
        return "/dashboard/runs" in d.current_url and bool(
            d.find_elements("css selector", ".al-pager-line")
        )

    WebDriverWait(browser, 120, poll_frequency=0.5).until(listed)
    assert f"step={step}" in browser.current_url and f"tier={tier}" in browser.current_url
    line = browser.find_element("css selector", ".al-pager-line").text
    assert line.endswith(f"of {runs}")
    browser.save_screenshot(str(ARTIFACTS / "dashboard-steps-cell-runs.png"))
