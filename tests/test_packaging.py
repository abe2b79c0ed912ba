"""The distribution: what the wheel carries, and what a base install imports."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_the_four_packages_and_the_sql(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("agentledger-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    for package in (
        "agentledger",
        "agentledger/collector",
        "agentledger/dashboard",
        "agentledger/schemas",
        "agentledger/schemas/sql",
    ):
        assert f"{package}/__init__.py" in names, package
    sql_in_tree = {p.name for p in (ROOT / "schemas" / "sql").glob("*.sql")}
    assert sql_in_tree
    assert {f"agentledger/schemas/sql/{name}" for name in sql_in_tree} <= names
    assert "agentledger/cli.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "agentledger = agentledger.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


def test_importing_the_sdk_loads_no_server_dependency() -> None:
    code = (
        "import sys, agentledger, agentledger.cli;"
        "heavy = {'fastapi', 'clickhouse_connect', 'chdb', 'dash', 'plotly', 'uvicorn'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_serve_without_the_server_extra_names_the_extra() -> None:
    # Hide the server dependencies as a base install would lack them.
    code = (
        "import sys\n"
        "class Missing:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'fastapi', 'uvicorn', 'clickhouse_connect', 'chdb'}:\n"
        "            raise ImportError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, Missing())\n"
        "from agentledger.cli import main\n"
        "sys.exit(main(['serve', '--port', '0']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 2
    assert "pip install 'agentledger[server]'" in out.stderr
