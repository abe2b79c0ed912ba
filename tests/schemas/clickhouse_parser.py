"""Parse SQL with ClickHouse's own parser (chDB), without executing it.

``formatQuery`` parses its argument and prints it back formatted, or fails with the parser's
syntax error; it needs no table to exist, no cluster and no Keeper. It runs in a separate
process: chDB allows one database directory per process, and a test module may hold one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

_SCRIPT = r"""
import json, sys
import chdb

results = []
for statement in json.load(sys.stdin):
    literal = "'" + statement.replace("\\", "\\\\").replace("'", "\\'") + "'"
    try:
        formatted = chdb.query(f"SELECT formatQuery({literal})", "TSVRaw").bytes().decode()
        results.append({"ok": True, "text": formatted})
    except Exception as exc:
        results.append({"ok": False, "text": str(exc)})
json.dump(results, sys.stdout)
"""


def parse_all(statements: Sequence[str]) -> list[tuple[bool, str]]:
    """For each statement: whether ClickHouse parsed it, and its formatted text or the error."""
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        input=json.dumps(list(statements)),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return [(item["ok"], item["text"]) for item in json.loads(done.stdout)]


def assert_all_parse(statements: Sequence[str]) -> list[str]:
    """The formatted statements; fails naming every statement ClickHouse refused."""
    results = parse_all(statements)
    refused = [
        f"{statement[:200]!r}\n  -> {text[:300]}"
        for statement, (ok, text) in zip(statements, results)
        if not ok
    ]
    assert not refused, "ClickHouse refused:\n" + "\n".join(refused)
    return [text for _, text in results]
