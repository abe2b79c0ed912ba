"""Migrations applied once, with a lock row that other collectors respect, on chDB.

A second collector cannot open the same chDB directory, so "another collector" is played by
claims written into the lock table, and, for the one that finishes while we wait, by a thread
applying the migrations through the same store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentledger.collector.store import LOCK_TABLE, MIGRATIONS_TABLE, Store, StoreError
from agentledger.schemas.cluster import ClusterLayout, ledger_statements
from tests.conftest import ROOT

MIGRATION_FILES = sorted(path.name for path in (ROOT / "schemas" / "sql").glob("*.sql"))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store(f"chdb://{tmp_path_factory.mktemp('migrations')}")
    yield opened
    opened.close()


def _reset(store: Store) -> None:
    """Forget every migration, as a fresh database would (the tables stay: DDL is idempotent)."""
    for statement in ledger_statements():
        store.command(statement)
    store.command(f"TRUNCATE TABLE {MIGRATIONS_TABLE}")
    store.command(f"TRUNCATE TABLE {LOCK_TABLE}")


def _claim(store: Store, owner: str, *, released: bool = False, age_seconds: int = 0) -> None:
    store.command(
        f"INSERT INTO {LOCK_TABLE} (name, owner, released, at) "
        "VALUES ('migrate', {owner:String}, {released:Bool}, "
        "now64(9) - INTERVAL {age:UInt32} SECOND)",
        {"owner": owner, "released": released, "age": age_seconds},
    )


def test_migrate_applies_each_file_once_and_then_nothing(store: Store) -> None:
    _reset(store)
    assert store.migrate() == MIGRATION_FILES
    assert store.migrate() == []
    assert store.applied_migrations() == {int(name.split("_")[0]): name for name in MIGRATION_FILES}
    (rows,) = store.query(f"SELECT count() FROM {MIGRATIONS_TABLE}")[0]
    assert rows == len(MIGRATION_FILES)
    # The lock was taken once and released once.
    claims = store.query(f"SELECT owner, released FROM {LOCK_TABLE} ORDER BY released")
    assert [released for _, released in claims] == [False, True]
    assert claims[0][0] == claims[1][0]


def test_a_live_claim_of_another_collector_is_waited_for_then_overridden(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _reset(store)
    _claim(store, "0-other-collector")
    with caplog.at_level(logging.INFO, logger="agentledger.collector.store"):
        applied = store.migrate(lock_wait_seconds=0.3, poll_seconds=0.05)
    # The other never finished: the missing migrations are applied here, idempotently.
    assert applied == MIGRATION_FILES
    assert "waiting for another collector: holder=0-other-collector" in caplog.text
    assert "did not finish" in caplog.text


@pytest.mark.parametrize(
    ("released", "age_seconds"),
    [(True, 0), (False, 3_600)],
    ids=["released", "older-than-the-lease"],
)
def test_a_released_or_expired_claim_does_not_block(
    store: Store, caplog: pytest.LogCaptureFixture, released: bool, age_seconds: int
) -> None:
    _reset(store)
    _claim(store, "0-other-collector", age_seconds=age_seconds)
    if released:
        _claim(store, "0-other-collector", released=True)
    with caplog.at_level(logging.INFO, logger="agentledger.collector.store"):
        assert store.migrate(lock_wait_seconds=30) == MIGRATION_FILES
    assert "waiting" not in caplog.text


def test_a_collector_that_waited_applies_nothing_once_the_holder_finished(store: Store) -> None:
    _reset(store)
    _claim(store, "0-other-collector")

    def other_collector() -> None:
        store._apply_pending()
        _claim(store, "0-other-collector", released=True)

    finisher = threading.Timer(0.3, other_collector)
    finisher.start()
    try:
        applied = store.migrate(lock_wait_seconds=60, poll_seconds=0.05)
    finally:
        finisher.join()
    assert applied == []
    (rows,) = store.query(f"SELECT count() FROM {MIGRATIONS_TABLE}")[0]
    assert rows == len(MIGRATION_FILES)


def test_a_cluster_layout_needs_a_server(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="needs a ClickHouse server DSN"):
        Store(f"chdb://{tmp_path}", cluster=ClusterLayout("agentledger"))
