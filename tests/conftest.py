"""Servers shared by the whole test run (started on first use, stopped at the end)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import PostgreSQL, postgresql


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgreSQL]:
    """One real PostgreSQL for the run, on a free loopback port in a scratch directory."""
    with postgresql() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh empty database: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sqlite')}/relay.db"
    server: PostgreSQL = request.getfixturevalue("postgres_server")
    return server.create_database()
