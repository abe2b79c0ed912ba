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
from datetime import date, timedelta
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
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
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


def _every_day(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def test_every_card_draws_its_trend_from_the_apis_days(filled: Collector, browser: Any) -> None:
    days = [MetricsRow.model_validate(r) for r in api(filled, "/api/v1/metrics", group_by="day")]
    breaches = api(filled, "/api/v1/budgets/by_day")
    load(browser, filled, "", ".al-card .al-spark .main-svg", "overview-trends")
    sparks = browser.execute_script(
        "return Array.from(document.querySelectorAll('.al-card')).map(c => {"
        " const g = c.querySelector('.al-spark .js-plotly-plot');"
        " return [c.querySelector('.al-card-label').innerText,"
        "  g && g.data ? g.data[0].x : null, g && g.data ? g.data[0].y : null]; })"
    )
    by_label = {label.strip(): (x, y) for label, x, y in sparks}
    assert len(by_label) == 9 and all(x is not None for x, _ in by_label.values())

    run_of_days = _every_day(min(r.day or "" for r in days), max(r.day or "" for r in days))
    runs = {r.day: r.runs for r in days}
    rates = {r.day: r.success_rate for r in days}
    over = {d["day"]: d["breached_runs"] for d in breaches}
    x, y = by_label["Runs"]
    assert [day[:10] for day in x] == run_of_days
    assert y == [runs.get(day, 0) for day in run_of_days]
    # A day without runs, or without a verdict, is a gap (null), never a zero.
    _, y = by_label["Success rate"]
    assert y == [rates.get(day) for day in run_of_days]
    _, y = by_label["Budget breaches"]
    assert y == [over.get(day, 0) for day in run_of_days]

    # "Over time": bars only on days with runs; the cost line has every day and breaks on a
    # day without runs instead of joining the days around it.
    WebDriverWait(browser, 120, poll_frequency=0.5).until(
        lambda d: d.execute_script(
            "const g = document.querySelector('#trend .js-plotly-plot');"
            " return !!(g && g.data && g.data.length >= 3);"
        )
    )
    chart = browser.execute_script(
        "const g = document.querySelector('#trend .js-plotly-plot');"
        " return g.data.slice(0, 3).map(t => [t.x, t.y, t.connectgaps === true]);"
    )
    (bar_x, bar_y, _), _, (line_x, line_y, joined) = chart
    assert [day[:10] for day in bar_x] == sorted(runs) and bar_y == [runs[d] for d in sorted(runs)]
    cpco = {r.day: r.cost_per_correct_outcome_usd for r in days}
    assert [day[:10] for day in line_x] == run_of_days and not joined
    assert [None if v is None else Decimal(str(v)) for v in line_y] == [
        None if cpco.get(day) is None else Decimal(str(float(cpco[day]))) for day in run_of_days
    ]


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


def _run_sql(driver: Any, sql: str, ready_css: str, shot: str) -> None:
    """Type ``sql`` into the SQL page, press Run, wait for ``ready_css``, save a screenshot,
    and fail on any console error."""
    driver.get_log("browser")
    text = driver.find_element(By.ID, "sql-text")
    text.send_keys(Keys.CONTROL, "a")
    text.send_keys(Keys.DELETE)
    text.send_keys(sql)
    driver.find_element(By.ID, "sql-run").click()

    def answered(d: Any) -> bool:
        return bool(
            d.execute_script(
                "return document.querySelector(arguments[0]) !== null"
                " && document.querySelector('[data-dash-is-loading=\"true\"]') === null",
                ready_css,
            )
        )

    WebDriverWait(driver, 180, poll_frequency=0.5).until(answered)
    time.sleep(0.5)
    driver.save_screenshot(str(ARTIFACTS / f"dashboard-{shot}.png"))
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], f"console errors after running {sql!r}: {errors}"


SQL = (
    "SELECT workflow, count() AS runs, sum(cost_usd) AS spend_usd "
    "FROM runs GROUP BY workflow ORDER BY workflow"
)


def test_the_sql_page_shows_what_the_sql_api_answers(filled: Collector, browser: Any) -> None:
    response = httpx.post(filled.url + "/api/v1/sql", json={"sql": SQL}, timeout=300)
    assert response.status_code == 200, response.text
    expected = json.loads(response.text, parse_float=Decimal)
    load(browser, filled, "sql", "#sql-text", "sql")

    _run_sql(browser, SQL, "#sql-result table", "sql-result")

    (table,) = browser.execute_script(TABLES_JS, "#sql-result")
    header, *rows = table
    assert header == expected["columns"]
    assert [(r[0], int(r[1]), Decimal(r[2])) for r in rows] == [
        (workflow, runs, Decimal(str(spend))) for workflow, runs, spend in expected["rows"]
    ]


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO outcomes (run_id) VALUES ('x')", "DROP TABLE spans"],
    ids=["insert", "drop"],
)
def test_the_sql_page_refuses_writes_as_the_api_does(
    filled: Collector, browser: Any, sql: str
) -> None:
    refused = httpx.post(filled.url + "/api/v1/sql", json={"sql": sql}, timeout=60)
    assert refused.status_code == 400
    message = refused.json()["detail"][0]["msg"]
    total = api(filled, "/api/v1/runs", limit=1)["total"]
    load(browser, filled, "sql", "#sql-text", "sql-before-write")

    _run_sql(browser, sql, "#sql-result .al-sql-notice", f"sql-refused-{sql.split()[0].lower()}")

    notice = browser.find_element(By.CSS_SELECTOR, "#sql-result .al-sql-notice").text
    assert "The query was not run" in notice and message in notice
    assert api(filled, "/api/v1/runs", limit=1)["total"] == total


def test_the_run_pages_call_table_fits_a_laptop_window(filled: Collector, browser: Any) -> None:
    # At 1,100 pixels the table once scrolled sideways and cut its last column to "Erro…".
    browser.set_window_size(1100, 1400)
    try:
        load(browser, filled, "runs/demo-7-00001", ".al-table", "run-narrow")
        wrap = browser.execute_script(
            "const w = Array.from(document.querySelectorAll('.al-table-wrap')).pop();"
            " return [w.scrollWidth, w.clientWidth,"
            " Array.from(w.querySelectorAll('th')).map(th => th.innerText.trim())];"
        )
    finally:
        browser.set_window_size(1400, 1800)
    scroll_width, client_width, headers = wrap
    assert "Error" in headers
    assert scroll_width <= client_width, f"the call table is {scroll_width}px in {client_width}px"
