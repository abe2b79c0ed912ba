"""The ``agentledger import`` subcommands of issue 4 reach their importers."""

from __future__ import annotations

import pytest

from agentledger import cli
from tests.conftest import SHARED_DATA


@pytest.mark.parametrize(
    "argv, handler",
    [
        (["import", "otlp", "a.json", "b.json"], "_import_otlp"),
        (["import", "langfuse", "a.trace.json", "--project", "p"], "_import_langfuse"),
        (["import", "swebench", "leaderboards.json"], "_import_swebench"),
        (["import", "aider", "a.yml"], "_import_aider"),
    ],
)
def test_each_source_has_a_subcommand(argv: list[str], handler: str) -> None:
    args = cli.build_parser().parse_args([*argv, "--endpoint", "http://127.0.0.1:9"])
    assert args.handler is getattr(cli, handler)
    assert args.endpoint == "http://127.0.0.1:9"


def test_a_missing_file_fails_before_sending(capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(SHARED_DATA / "no-such-file.json")
    code = cli.main(["import", "otlp", missing, "--endpoint", "http://127.0.0.1:9"])
    assert code == 2
    assert "cannot read the file" in capsys.readouterr().err
