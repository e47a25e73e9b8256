"""Engine and session factories. No module-level engine: create_engine() is called by the app/CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


class DatabaseCheckError(RuntimeError):
    """The database does not have the durability settings salesbot relies on."""


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, *, busy_timeout_ms: int = 5000, pool_size: int = 5) -> AsyncEngine:
    """Build the async engine. SQLite gets WAL, synchronous=FULL, busy_timeout, foreign keys and
    BEGIN IMMEDIATE transactions (a transaction that reads then writes can otherwise fail with
    SQLITE_BUSY without waiting)."""
    if is_sqlite(url):
        database = make_url(url).database or ""
        in_memory = database in {"", ":memory:"} or "mode=memory" in url
        # An in-memory database lives in one connection (StaticPool): no pool sizes apply.
        pool_args: dict[str, Any] = {} if in_memory else {"pool_size": pool_size, "max_overflow": pool_size}
        engine = create_async_engine(url, **pool_args)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


async def check_database(engine: AsyncEngine) -> dict[str, Any]:
    """Assert the durability settings at start-up; returns what was read (for logs)."""
    async with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            version = (await conn.execute(text("SELECT version()"))).scalar_one()
            return {"dialect": engine.dialect.name, "version": version}
        found = {
            "journal_mode": (await conn.execute(text("PRAGMA journal_mode"))).scalar_one(),
            "synchronous": (await conn.execute(text("PRAGMA synchronous"))).scalar_one(),
            "busy_timeout": (await conn.execute(text("PRAGMA busy_timeout"))).scalar_one(),
            "foreign_keys": (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one(),
        }
    database = engine.url.database or ""
    in_memory = database in {"", ":memory:"} or database.startswith("file::memory:")
    if not in_memory and str(found["journal_mode"]).lower() != "wal":
        raise DatabaseCheckError(f"SQLite journal_mode is {found['journal_mode']}, expected wal")
    if int(found["synchronous"]) != 2:
        raise DatabaseCheckError(f"SQLite synchronous is {found['synchronous']}, expected 2 (FULL)")
    if int(found["busy_timeout"]) <= 0:
        raise DatabaseCheckError("SQLite busy_timeout is not set")
    if int(found["foreign_keys"]) != 1:
        raise DatabaseCheckError("SQLite foreign_keys is off")
    return {"dialect": "sqlite", **found}


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=True)


@dataclass(frozen=True)
class Database:
    """The engine and its session factory, built once per process by the app or CLI."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @classmethod
    def open(cls, url: str, *, busy_timeout_ms: int = 5000, pool_size: int = 5) -> Database:
        engine = create_engine(url, busy_timeout_ms=busy_timeout_ms, pool_size=pool_size)
        return cls(engine=engine, sessions=session_factory(engine))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any exception."""
        async with self.sessions() as session, session.begin():
            yield session

    async def close(self) -> None:
        await self.engine.dispose()
