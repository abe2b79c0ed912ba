"""The ClickHouse store: one client, the migrations ledger, batched inserts and queries.

An ``http://`` or ``https://`` DSN talks to a ClickHouse server; a ``chdb://`` DSN opens an
embedded chDB directory, which only one process may hold at a time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from agentledger.schemas.sql import migrations

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE = "schema_migrations"


class StoreError(Exception):
    """The store cannot be opened or written."""


def resolve_dsn(dsn: str | None) -> str:
    """Turn a store setting into a clickhouse-connect DSN.

    A bare path or a ``chdb://`` DSN with a relative path becomes an absolute ``chdb://``
    DSN, since chDB resolves paths against the process's working directory.
    """
    from agentledger.schemas.environment import DEFAULT_STORE_DIR

    value = dsn or DEFAULT_STORE_DIR
    if value.startswith(("http://", "https://")):
        return value
    path = value.removeprefix("chdb://")
    return "chdb://" + str(Path(path).expanduser().resolve())


class Store:
    """A ClickHouse database holding agentledger's tables.

    clickhouse-connect clients are not safe for concurrent queries, so calls are serialised
    by a lock; chDB runs one query at a time anyway.
    """

    def __init__(self, dsn: str | None = None) -> None:
        self.dsn = resolve_dsn(dsn)
        if self.dsn.startswith("chdb://"):
            os.makedirs(self.dsn.removeprefix("chdb://"), exist_ok=True)
        try:
            self._client: Client = clickhouse_connect.get_client(dsn=self.dsn)
        except Exception as exc:  # the driver raises several unrelated types here
            raise StoreError(f"cannot open store {self.dsn!r}: {exc}") from exc
        self._lock = threading.Lock()

    @property
    def is_embedded(self) -> bool:
        return self.dsn.startswith("chdb://")

    def migrate(self) -> list[str]:
        """Apply every migration not yet in the ledger; return the names applied."""
        self.command(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
            "(version UInt32, name String, applied_at DateTime64(9, 'UTC') DEFAULT now64(9)) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        done = {row[0] for row in self.query(f"SELECT version FROM {MIGRATIONS_TABLE} FINAL")}
        applied = []
        for migration in migrations():
            if migration.version in done:
                continue
            for statement in migration.statements:
                self.command(statement)
            self.insert(MIGRATIONS_TABLE, [[migration.version, migration.name]], ["version", "name"])
            logger.info("migration applied: version=%d name=%s", migration.version, migration.name)
            applied.append(migration.name)
        return applied

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        with self._lock:
            self._client.command(sql, parameters=parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a query as tuples; bind values as ``{name:Type}`` placeholders."""
        with self._lock:
            return list(self._client.query(sql, parameters=parameters).result_rows)

    def query_dicts(self, sql: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a query as dicts keyed by column name."""
        with self._lock:
            result = self._client.query(sql, parameters=parameters)
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        with self._lock:
            self._client.insert(table, rows, column_names=list(columns))

    def close(self) -> None:
        with self._lock:
            self._client.close()
