"""Shared fixtures: a migrated database (SQLite always, PostgreSQL when SALESBOT_TEST_PG_URL is set),
a settable clock and test settings. Channel fakes live in tests/fakes/."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from sqlalchemy import text

from bot.clock import SHANGHAI, SettableClock
from bot.config import Settings, from_mapping
from bot.devtools import fake_wecom
from bot.devtools.fake_wecom import FakeWeCom
from bot.nlu.lexicon import Lexicon
from store.db import Database
from store.migrate import upgrade
from store.models import Base

PG_URL = os.environ.get("SALESBOT_TEST_PG_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

# The WeCom docs' example app (FACTS.md): real keys, so the official vectors apply.
CORP_ID = "wx5823bf96d3bd56c7"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
AGENT_ID = 218
SECRET = "test-secret-0123456789"
API_TOKEN = "test-api-token-0123456789abcdef"

# Monday 2026-11-30 10:00 Asia/Shanghai: inside working hours.
START = datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)

_pg_migrated = False


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'salesbot.db'}"
    return PG_URL


async def _reset_pg(db: Database) -> None:
    global _pg_migrated
    name = db.engine.url.database or ""
    if "test" not in name and "salesbot_" not in name:
        raise RuntimeError(f"refusing to wipe database {name!r}: SALESBOT_TEST_PG_URL must name a test database")
    if not _pg_migrated:
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await upgrade(db.engine)
        _pg_migrated = True
        return
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with db.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest_asyncio.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database for one test."""
    database = Database.open(db_url)
    if database.engine.dialect.name == "postgresql":
        await _reset_pg(database)
    else:
        await upgrade(database.engine)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


def make_settings(db_url: str, api_base: str = "http://127.0.0.1:9", **sections: dict[str, object]) -> Settings:
    """Test settings: the docs' example WeCom app, a database URL and a fake API base."""
    raw: dict[str, dict[str, object]] = {
        "server": {"host": "127.0.0.1", "port": 8080},
        "database": {"url": db_url},
        "wecom": {
            "corp_id": CORP_ID,
            "agent_id": AGENT_ID,
            "secret": SECRET,
            "token": TOKEN,
            "encoding_aes_key": AES_KEY,
            "api_base": api_base,
        },
        "api": {"token": API_TOKEN},
        "scheduler": {"enabled": False},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return from_mapping(raw, env={})


@pytest.fixture
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest_asyncio.fixture
async def fake(clock: SettableClock) -> AsyncIterator[FakeWeCom]:
    """A fake WeCom API on 127.0.0.1 for the test settings' corp, secret and agent."""
    async with fake_wecom.running_fake_wecom(
        clock, corp_id=CORP_ID, secret=SECRET, agent_id=AGENT_ID
    ) as server:
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- nlu: one jieba Lexicon per test session (building one costs ~1 s and ~190 MiB) -------------------


@pytest.fixture(scope="session")
def lexicon() -> Lexicon:
    """The shipped dictionary and the default funnel: the same instance the test apps use
    (tests/harness.py shared_lexicon). Shared by every test: add only words no other test relies on
    being absent."""
    from tests.harness import shared_lexicon

    return shared_lexicon()
