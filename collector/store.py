"""The ClickHouse store: one client, the migrations ledger, batched inserts and queries.

An ``http://`` or ``https://`` DSN talks to a ClickHouse server; a ``chdb://`` DSN opens an
embedded chDB directory, which only one process may hold at a time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client

from agentledger.collector import columnar
from agentledger.schemas.cluster import (
    DEFAULT_DATABASE_ARGUMENT,
    LEDGER_TABLE,
    LOCK_TABLE,
    ClusterLayout,
    ClusterRenderer,
    ledger_statements,
    migration_statements,
    sharded_names,
)
from agentledger.schemas.sql import migrations

logger = logging.getLogger(__name__)

MIGRATIONS_TABLE: Final = LEDGER_TABLE
#: A claim on the migration lock older than this is taken for a collector that died.
LOCK_LEASE_SECONDS: Final = 600
_LOCK_NAME: Final = "migrate"
# Session settings of a collector on a cluster. Queries read Distributed tables inside
# subqueries, which ClickHouse refuses by default ("double-distributed"); GLOBAL keeps them
# correct whatever the sharding. Inserts return once the rows are on their shards, so that
# an acknowledged export cannot be lost with the collector's node.
CLUSTER_SESSION_SETTINGS: Final = {
    "distributed_product_mode": "global",
    "insert_distributed_sync": 1,
}


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

    def __init__(self, dsn: str | None = None, *, cluster: ClusterLayout | None = None) -> None:
        self.dsn = resolve_dsn(dsn)
        #: Where the tables live on a cluster; None for a single node or chDB.
        self.cluster = cluster
        settings: dict[str, Any] = {}
        if self.dsn.startswith("chdb://"):
            if cluster is not None:
                raise StoreError(
                    f"cluster {cluster.cluster!r} needs a ClickHouse server DSN "
                    f"(http://...), got {self.dsn!r}"
                )
            os.makedirs(self.dsn.removeprefix("chdb://"), exist_ok=True)
        elif cluster is not None:
            settings = dict(CLUSTER_SESSION_SETTINGS)
        try:
            self._client: Client = clickhouse_connect.get_client(dsn=self.dsn, settings=settings)
        except Exception as exc:  # the driver raises several unrelated types here
            raise StoreError(f"cannot open store {self.dsn!r}: {exc}") from exc
        self._lock = threading.Lock()
        # Arrow types of each table's columns, read from the table at its first insert.
        self._column_types: dict[str, dict[str, pa.DataType]] = {}
        #: Statements that may have written, counted in this process: with chDB nobody else
        #: writes, so an unchanged count means the stored data is unchanged.
        self.writes = 0
        if cluster is not None and cluster.database == DEFAULT_DATABASE_ARGUMENT:
            (database,) = self.query("SELECT currentDatabase()")[0]
            self.cluster = cluster.in_database(str(database))

    @property
    def is_embedded(self) -> bool:
        return self.dsn.startswith("chdb://")

    def migrate(self, *, lock_wait_seconds: float = 60.0, poll_seconds: float = 0.5) -> list[str]:
        """Apply every migration not yet in the ledger; return the names applied.

        Safe when several collectors start together: each statement is idempotent (``IF NOT
        EXISTS``), and a lock row makes the others wait while one applies. A collector that
        waited ``lock_wait_seconds`` in vain applies what is still missing itself.
        """
        for statement in ledger_statements(self.cluster):
            self.command(statement)
        if not self._pending():
            return []

        owner = uuid.uuid4().hex
        self.insert(LOCK_TABLE, [[_LOCK_NAME, owner]], ["name", "owner"])
        try:
            holder = self._lock_holder()
            if holder not in (owner, None):
                self._wait_for_holder(holder, lock_wait_seconds, poll_seconds)
            return self._apply_pending()
        finally:
            self.insert(LOCK_TABLE, [[_LOCK_NAME, owner, True]], ["name", "owner", "released"])

    def applied_migrations(self) -> dict[int, str]:
        """Versions and file names recorded in the ledger."""
        rows = self.query(f"SELECT version, name FROM {MIGRATIONS_TABLE} FINAL ORDER BY version")
        return {int(version): str(name) for version, name in rows}

    def _pending(self) -> list[int]:
        done = self.applied_migrations()
        return [m.version for m in migrations() if m.version not in done]

    def _lock_holder(self) -> str | None:
        """The owner of the oldest live, unreleased claim: the one allowed to migrate."""
        rows = self.query(
            f"SELECT owner FROM {LOCK_TABLE} WHERE name = {{name:String}} AND NOT released "
            f"AND at > now64(9) - INTERVAL {{lease:UInt32}} SECOND AND owner NOT IN "
            f"(SELECT owner FROM {LOCK_TABLE} WHERE name = {{name:String}} AND released) "
            "ORDER BY at, owner LIMIT 1",
            {"name": _LOCK_NAME, "lease": LOCK_LEASE_SECONDS},
        )
        return str(rows[0][0]) if rows else None

    def _wait_for_holder(self, holder: str, wait_seconds: float, poll_seconds: float) -> None:
        logger.info("migrations: waiting for another collector: holder=%s", holder)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if not self._pending() or self._lock_holder() != holder:
                return
            time.sleep(poll_seconds)
        logger.warning(
            "migrations: holder=%s did not finish in %.0f s; applying the missing ones here "
            "(every statement is idempotent)",
            holder,
            wait_seconds,
        )

    def _apply_pending(self) -> list[str]:
        found = migrations()
        renderer = ClusterRenderer(self.cluster, sharded_names(found)) if self.cluster else None
        applied = []
        for migration in found:
            # Re-read before each one: another collector may have applied it meanwhile.
            if migration.version in self.applied_migrations():
                continue
            for statement in migration_statements(migration, self.cluster, renderer):
                self.command(statement)
            self._column_types.clear()  # a migration may have changed a column's type
            row = [migration.version, migration.name]
            self.insert(MIGRATIONS_TABLE, [row], ["version", "name"])
            logger.info("migration applied: version=%d name=%s", migration.version, migration.name)
            applied.append(migration.name)
        return applied

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.writes += 1
            self._client.command(sql, parameters=parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a query as tuples; bind values as ``{name:Type}`` placeholders."""
        with self._lock:
            return list(self._client.query(sql, parameters=parameters).result_rows)

    def query_dicts(
        self, sql: str, parameters: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Rows of a query as dicts keyed by column name."""
        with self._lock:
            result = self._client.query(sql, parameters=parameters)
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def query_read_only(
        self, sql: str, *, max_seconds: int
    ) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
        """Column names, ClickHouse type names and rows of a query run with ``readonly = 1``
        and stopped after ``max_seconds``.

        The settings go with this one query (never ``SET`` on the session), so the writer
        sharing a chDB session is never left read-only.
        """
        settings = {"readonly": 1, "max_execution_time": max_seconds}
        with self._lock:
            result = self._client.query(sql, settings=settings)
        types = [column_type.name for column_type in result.column_types]
        return list(result.column_names), types, list(result.result_rows)

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        """Insert rows (each in ``columns`` order) as one Arrow block; see ``columnar``."""
        if rows:
            self.insert_block(table, self.block(table, rows, columns))

    def block(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> pa.Table:
        """Rows as an Arrow block typed for ``table``'s columns."""
        types = self.arrow_types(table)
        try:
            return columnar.arrow_table(rows, columns, [types[name] for name in columns])
        except KeyError as exc:
            raise StoreError(f"table {table!r} has no column {exc.args[0]!r}") from None

    def insert_block(self, table: str, block: pa.Table) -> None:
        """Insert an Arrow block whose column names are columns of ``table``."""
        with self._lock:
            self.writes += 1
            self._client.insert_arrow(table, block)

    def arrow_types(self, table: str) -> dict[str, pa.DataType]:
        """The Arrow type of each column of ``table``, as :meth:`insert` builds blocks."""
        types = self._column_types.get(table)
        if types is None:
            with self._lock:
                described = self._client.query(f"DESCRIBE TABLE {table}").result_rows
            types = {str(row[0]): columnar.arrow_type(str(row[1])) for row in described}
            self._column_types[table] = types
        return types

    def close(self) -> None:
        with self._lock:
            self._client.close()
