"""The database schema's version: Alembic migrations shipped in ``relay_service/migrations``."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)

INITIAL_REVISION = "0001"
"""The schema ``create_all`` made before migrations existed: such a database is stamped with it."""
MIGRATION_LOCK = 0x72656C6179
"""PostgreSQL advisory lock key: replicas starting together migrate one at a time."""


def alembic_config(url: str = "") -> Config:
    """An Alembic configuration for the packaged migrations (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", "relay_service:migrations")
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision this version of the service knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine) -> str:
    """Bring the database to the newest revision; returns that revision."""
    async with engine.begin() as connection:
        return await connection.run_sync(_upgrade)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision, ``None`` for an empty (or pre-migration) database."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


def _upgrade(connection: Connection) -> str:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = alembic_config()
    config.attributes["connection"] = connection
    tables = set(inspect(connection).get_table_names())
    if "calls" in tables and "alembic_version" not in tables:
        logger.info(
            "database created before migrations: marking it as revision %s", INITIAL_REVISION
        )
        command.stamp(config, INITIAL_REVISION)
    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(config, "head")
    after = MigrationContext.configure(connection).get_current_revision()
    if before != after:
        logger.info("database migrated from revision %s to %s", before, after)
    assert after is not None
    return after
