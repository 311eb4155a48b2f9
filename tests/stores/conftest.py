"""Fixtures that run each store test on SQLite and on the local PostgreSQL server.

Other test packages can build the same fixtures from ``stores.testing.temporary_database``.
"""

from __future__ import annotations

import functools

import pytest

from stores import Store
from stores.testing import postgres_unavailable, temporary_database


@functools.cache
def _postgres_skip_reason() -> str | None:
    # Probed once per session: an unreachable server would otherwise cost a timeout per test.
    return postgres_unavailable()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest):
    """The URL of a fresh, empty database (a SQLite file, or a new PostgreSQL database)."""
    if request.param == "postgresql" and (reason := _postgres_skip_reason()):
        pytest.skip(reason)
    with temporary_database(request.param) as url:
        yield url


@pytest.fixture
def store(db_url: str):
    s = Store(db_url)
    yield s
    s.close()
