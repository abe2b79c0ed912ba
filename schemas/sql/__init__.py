"""Numbered ClickHouse DDL files, applied once each through the ``schema_migrations`` table."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    """One numbered DDL file."""

    version: int
    name: str
    statements: tuple[str, ...]


def _split(sql: str) -> tuple[str, ...]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return tuple(s.strip() for s in "\n".join(lines).split(";") if s.strip())


def migrations() -> list[Migration]:
    """All migrations in version order, read from the ``.sql`` files of this package."""
    found = []
    for entry in resources.files(__name__).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version = int(entry.name.split("_", 1)[0])
        found.append(Migration(version, entry.name, _split(entry.read_text("utf-8"))))
    return sorted(found, key=lambda m: m.version)
