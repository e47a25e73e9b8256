"""`salesbot db upgrade` and the automatic upgrade on `serve`: Alembic, configured in code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any fixed number: two processes starting at once on PostgreSQL migrate one after the other.
PG_MIGRATION_LOCK = 0x5A1E5B07


class MigrationError(RuntimeError):
    """A migration left the database inconsistent (e.g. a foreign key pointing nowhere)."""


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (one connection, one transaction)."""
    url = engine.url.render_as_string(hide_password=False)

    def _do(sync_conn: Connection) -> None:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    await run_migration(engine, _do)


async def run_migration(engine: AsyncEngine, migrate: Callable[[Connection], Any]) -> None:
    """Run `migrate` in one transaction, safely for each backend.

    SQLite: Alembic's batch mode rebuilds a table by copying and dropping it; with foreign keys on,
    the drop would cascade-delete child rows (or fail). Foreign keys are switched off outside the
    transaction (the pragma is a no-op inside one), checked with foreign_key_check before commit, and
    the connection is discarded afterwards so the pool never hands out one with them off.
    PostgreSQL: transactional DDL plus an advisory lock, so concurrent start-ups migrate in turn.
    """
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            await conn.run_sync(migrate)
        return
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute("PRAGMA foreign_keys=OFF")
        try:
            await conn.begin()
            await conn.run_sync(migrate)
            broken = (await conn.execute(text("PRAGMA foreign_key_check"))).all()
            if broken:
                await conn.rollback()
                raise MigrationError(f"migration broke foreign keys: {broken[:5]}")
            await conn.commit()
        finally:
            await conn.invalidate()


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    def _get(sync_conn: Connection) -> str | None:
        return MigrationContext.configure(sync_conn).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_get)
