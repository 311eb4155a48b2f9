"""The store's conformance suite (``archon.testing.store_contract``) on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from archon.testing.store_contract import StoreContract
from stores import Store


class TestStore(StoreContract):
    @pytest.fixture
    def store(self, db_url: str):  # conftest.db_url: a fresh SQLite file, or a PostgreSQL database (marked postgres)
        s = Store(db_url)
        yield s
        s.close()
