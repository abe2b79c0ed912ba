"""Run every benchmark, print one table and write it to ``benchmarks/RESULTS.md``.

    scripts/bench [--quick] [--only NAME ...] [--output FILE]

Each benchmark is a module of this package with ``run(quick: bool) -> list[dict]``; every
dict is one row with the keys of :data:`ROW_KEYS`. Each module runs in a child process of
its own, so that one that fails, hangs or crashes (chDB holds native state) costs only its
own rows: the failure becomes a row of the table and the others still run.

A full run writes ``benchmarks/RESULTS.md``, the file the repository keeps. ``--quick`` (small
scales, a smoke run) and ``--only`` write ``benchmarks/RESULTS.partial.md`` instead, so that a
partial run never replaces the full one by accident; ``--output`` chooses another file.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import importlib
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
FULL_OUTPUT = BENCH_DIR / "RESULTS.md"
PARTIAL_OUTPUT = BENCH_DIR / "RESULTS.partial.md"

#: The order of the table: the issue's numbering. Other modules with ``run`` follow by name.
PREFERRED_ORDER = ("ingest", "queries", "sdk_overhead", "storage", "phoenix", "dashboard")
#: Files of this package that are not benchmarks of the table.
NOT_BENCHMARKS = frozenset({"__init__", "run", "fill", "servers"})
FAILED_SUFFIX = ": FAILED"
ROW_KEYS = ("name", "measures", "value", "unit", "target", "met", "note")
#: The longest one module may take before it is stopped and recorded as failed.
MODULE_TIMEOUT_SECONDS = {False: 4 * 3600, True: 20 * 60}


class RowError(ValueError):
    """A benchmark module returned a row that is not of the agreed shape."""


def discover() -> list[str]:
    """Names of the modules of this package that define a top-level ``run`` function.

    Read with :mod:`ast` rather than imported, so that discovering costs no imports of
    chDB or Dash, and a module that fails to import still shows up (and fails in its row).
    """
    found = []
    for path in sorted(BENCH_DIR.glob("*.py")):
        if path.stem in NOT_BENCHMARKS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if any(isinstance(node, ast.FunctionDef) and node.name == "run" for node in tree.body):
            found.append(path.stem)
    ranked = [name for name in PREFERRED_ORDER if name in found]
    return ranked + [name for name in found if name not in ranked]


def check_row(module: str, row: object) -> dict[str, Any]:
    """Validate one row of ``module``; return it with its keys in table order."""
    if not isinstance(row, dict):
        raise RowError(f"{module}: a row must be a dict, got {row!r}")
    missing = [key for key in ROW_KEYS if key not in row]
    if missing:
        raise RowError(f"{module}: row {row.get('name')!r} lacks {', '.join(missing)}")
    value = row["value"]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise RowError(f"{module}: row {row['name']!r} has value={value!r}; a number is needed")
    if row["met"] not in (True, False, None):
        raise RowError(f"{module}: row {row['name']!r} has met={row['met']!r}; True/False/None")
    return {key: row[key] for key in ROW_KEYS}


def failure_row(module: str, message: str) -> dict[str, Any]:
    """The row that stands for a module that did not finish."""
    return {
        "name": f"{module}{FAILED_SUFFIX}",
        "measures": "(the module did not finish)",
        "value": math.nan,
        "unit": "",
        "target": "",
        "met": False,
        "note": message,
    }


def run_child(module: str, quick: bool, output: Path) -> int:
    """In the child process: run one module and write its rows to ``output`` as JSON.

    A failure is written as ``{"error": ...}`` for the table, and its traceback printed.
    """
    try:
        imported = importlib.import_module(f"benchmarks.{module}")
        rows = [check_row(module, row) for row in imported.run(quick)]
    except Exception as exc:  # noqa: BLE001 - broad: any failure becomes its table row
        traceback.print_exc()
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        message = f"{type(exc).__name__}: {first_line}"
        output.write_text(json.dumps({"error": message}), encoding="utf-8")
        return 1
    output.write_text(json.dumps(rows, allow_nan=True), encoding="utf-8")
    return 0


def _exit_now(code: int) -> None:
    """Leave without joining what the module left running: the parent stops its group."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_module(module: str, quick: bool) -> list[dict[str, Any]]:
    """Run one module in a child process; its failure comes back as a row."""
    with tempfile.TemporaryDirectory(prefix="agentledger-bench-rows-") as scratch:
        output = Path(scratch) / "rows.json"
        command = [sys.executable, "-m", "benchmarks.run", "--child", module, str(output)]
        if quick:
            command.append("--quick")
        timeout = MODULE_TIMEOUT_SECONDS[quick]
        started = time.monotonic()
        # A session of its own, so that whatever the module left running (servers, load
        # generators) can be stopped with it, by its process group.
        child = subprocess.Popen(command, cwd=REPO_ROOT, start_new_session=True)
        try:
            returncode = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            returncode = None
        finally:
            _stop_group(child.pid)
        elapsed = time.monotonic() - started
        if returncode is None:
            return [failure_row(module, f"stopped after {timeout} s")]
        if not output.exists():
            # The child died without a word (a crash): its output is on the console.
            return [failure_row(module, f"exit code {returncode} after {elapsed:.0f} s")]
        answer = json.loads(output.read_text(encoding="utf-8"))
        if isinstance(answer, dict):
            return [failure_row(module, f"{answer['error']} (after {elapsed:.0f} s)")]
        rows: list[dict[str, Any]] = answer
        print(f"[bench] {module}: {len(rows)} rows in {elapsed:.0f} s", flush=True)
        return rows


def _stop_group(pgid: int) -> None:
    """Terminate the process group ``pgid`` (one child and its descendants), then kill it."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return  # nothing left
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


# --- describing the machine ---------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures depend on: CPU, cores, memory, OS, Python, store drivers, commit."""
    return {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "RAM": _memory(),
        "OS": f"{_os_name()} ({platform.system()} {platform.release()}, {platform.machine()})",
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
        "chdb": _version("chdb"),
        "clickhouse-connect": _version("clickhouse-connect"),
        "opentelemetry-sdk": _version("opentelemetry-sdk"),
        "git commit": _git_commit(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: fall back on what platform knows
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                kib = int(line.split()[1])
                return f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass  # not Linux, or an unexpected format: say so rather than guess
    return "unknown"


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", platform.platform())
    except OSError:
        return platform.platform()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{commit} (with uncommitted changes)" if dirty else commit


# --- the table ----------------------------------------------------------------------------


def format_value(value: float, unit: str) -> str:
    """Three significant figures, thousands separated; NaN (a failed row) as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def shortfall(value: float, target: str) -> str:
    """How far ``value`` misses a target written ``<= N`` or ``>= N``, as a factor."""
    match = re.match(r"\s*(<=|>=)\s*([0-9][0-9,]*\.?[0-9]*)", target)
    if not match or math.isnan(value):
        return ""
    bound = float(match.group(2).replace(",", ""))
    if match.group(1) == "<=" and value > bound > 0:
        return f": {value / bound:.2f}x the bound"
    if match.group(1) == ">=" and 0 < value < bound:
        return f": {bound / value:.2f}x short"
    return ""


def format_met(met: bool | None) -> str:
    """yes / NO / blank (no target, or a scale at which the target does not apply)."""
    return {True: "yes", False: "NO", None: ""}[met]


def table_cells(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """The table's cells, row by row, header first."""
    cells = [["benchmark", "what it measures", "value", "target", "met?"]]
    for row in rows:
        cells.append(
            [
                str(row["name"]),
                str(row["measures"]),
                format_value(row["value"], str(row["unit"])),
                str(row["target"]),
                format_met(row["met"]),
            ]
        )
    return cells


def plain_table(rows: Sequence[dict[str, Any]]) -> str:
    """The table for a terminal: columns padded, the text column cut at 60 characters."""
    cells = table_cells(rows)
    for line in cells[1:]:
        if len(line[1]) > 60:
            line[1] = line[1][:57] + "..."
    widths = [max(len(line[col]) for line in cells) for col in range(len(cells[0]))]
    out = []
    for index, line in enumerate(cells):
        out.append("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The table in Markdown, with ``|`` in cells escaped."""
    cells = table_cells(rows)
    lines = []
    for index, line in enumerate(cells):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |")
        if index == 0:
            lines.append("|" + "|".join("---" for _ in line) + "|")
    return "\n".join(lines)


def report(
    rows: Sequence[dict[str, Any]],
    *,
    command: str,
    started: dt.datetime,
    seconds: float,
    quick: bool,
) -> str:
    """The whole RESULTS file: when, where, the command, the table and each row's note."""
    written = (
        f"Written by `{command}` on {started:%Y-%m-%d %H:%M} UTC; the run took "
        f"{seconds / 60:.1f} minutes."
    )
    if quick:
        written += " **A quick run: small scales, a smoke test, not figures to quote.**"
    lines = [
        "# Benchmark results",
        "",
        written,
        "Each benchmark is a module of `benchmarks/`; its docstring says how it measures.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {key}: {value}" for key, value in machine().items()]
    lines += ["", "## Results", "", markdown_table(rows), "", "## Notes", ""]
    for row in rows:
        if row.get("note"):
            lines.append(f"- **{row['name']}**: {row['note']}")
    failed = [row for row in rows if row["name"].endswith(FAILED_SUFFIX)]
    if failed:
        lines += ["", "## Benchmarks that did not finish", ""]
        lines += [f"- {row['name'].removesuffix(FAILED_SUFFIX)}: {row['note']}" for row in failed]
    missed = [row for row in rows if row["met"] is False and row not in failed]
    lines += ["", "## Targets missed", ""]
    for row in missed:
        value = format_value(row["value"], str(row["unit"]))
        lines.append(
            f"- {row['name']}: {value} against {row['target'] or 'no target'}"
            f"{shortfall(row['value'], str(row['target']))}; what limits it is in its note."
        )
    if not missed:
        lines.append("None.")
    return "\n".join(lines) + "\n"


# --- entry point --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks, print the table, write the RESULTS file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small scales: a smoke run")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these modules")
    parser.add_argument("--output", type=Path, help="where to write the results (Markdown)")
    parser.add_argument("--child", nargs=2, metavar=("MODULE", "ROWS_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        _exit_now(run_child(args.child[0], args.quick, Path(args.child[1])))

    available = discover()
    chosen = available
    if args.only:
        unknown = [name for name in args.only if name not in available]
        if unknown:
            parser.error(f"--only: unknown benchmark {unknown!r}; choose from {available}")
        chosen = [name for name in available if name in args.only]
    output = args.output or (PARTIAL_OUTPUT if args.quick or args.only else FULL_OUTPUT)

    started = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    rows: list[dict[str, Any]] = []
    for module in chosen:
        print(f"[bench] {module} ...", flush=True)
        rows.extend(run_module(module, args.quick))
    seconds = time.monotonic() - clock

    command = "scripts/bench" + "".join(
        part
        for part in (
            " --quick" if args.quick else "",
            " --only " + " ".join(chosen) if args.only else "",
        )
    )
    print()
    print(plain_table(rows))
    output.write_text(
        report(rows, command=command, started=started, seconds=seconds, quick=args.quick),
        encoding="utf-8",
    )
    print(f"\nwritten to {output}")
    # A missed target is a result; only a benchmark that did not finish fails the command.
    return 1 if any(row["name"].endswith(FAILED_SUFFIX) for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
