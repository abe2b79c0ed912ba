"""Fixtures of the hardening tests: one chDB store per module, and apps built on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentledger.collector.store import Store, StoreError


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    # One chDB directory per process at a time: the module's store is closed at its end.
    opened = Store(f"chdb://{tmp_path_factory.mktemp('hardening-store')}")
    yield opened
    opened.close()


class FlakyStore:
    """A store whose inserts fail while ``down`` is set, as when ClickHouse is unreachable."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.down = False
        self.refused = 0

    def insert(self, table: str, rows: Any, columns: Any) -> None:
        if self.down and rows:
            self.refused += 1
            raise StoreError("connection refused (simulated)")
        self._store.insert(table, rows, columns)

    def insert_block(self, table: str, block: Any) -> None:
        """Arrow blocks (the ingest workers' rows) fail the same way."""
        if self.down and block.num_rows:
            self.refused += 1
            raise StoreError("connection refused (simulated)")
        self._store.insert_block(table, block)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
