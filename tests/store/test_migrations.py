"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.db import Database
from store.migrate import current_revision
from store.models import Base


async def test_migrations_match_models(db: Database) -> None:
    def diff(sync_conn: Any) -> list[Any]:
        ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True, "compare_server_default": True})
        return list(compare_metadata(ctx, Base.metadata))

    async with db.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    assert await current_revision(db.engine) == "0006"


async def test_sqlite_batch_migration_keeps_child_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Alembic batch mode rebuilds a table; with foreign keys on, that would cascade-delete aliases."""
    from alembic.operations import Operations
    from sqlalchemy import Column, String, func, select

    from bot.clock import SettableClock
    from store.migrate import run_migration, upgrade
    from store.models import Customer, CustomerAlias
    from tests.conftest import START

    db = Database.open(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await upgrade(db.engine)
        now = SettableClock(START).now()
        async with db.transaction() as s:
            customer = Customer(name="华远科技", created_at=now)
            customer.aliases.append(CustomerAlias(alias="华远"))
            s.add(customer)

        def add_column(sync_conn: Any) -> None:
            ops = Operations(MigrationContext.configure(sync_conn))
            with ops.batch_alter_table("customers", recreate="always") as batch:
                batch.add_column(Column("website", String(200), nullable=True))

        await run_migration(db.engine, add_column)
        async with db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(CustomerAlias)) == 1
        async with db.engine.connect() as conn:  # connections handed out later have foreign keys on
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await db.close()
