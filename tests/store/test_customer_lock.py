"""R17: two reps recording on one customer at the same moment see each other (PostgreSQL: READ COMMITTED
would otherwise let each transaction count only its own activity)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import text

from bot.clock import SettableClock
from store.db import Database
from store.models import Activity
from store.repos.customers import CustomerRepo
from tests.harness import seed_customers, seed_team


async def test_the_second_counter_waits_and_sees_the_first(db: Database, backend: str, clock: SettableClock) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: the transactions cannot overlap")
    ids = await seed_team(db, clock)
    customer_id = (await seed_customers(db, clock, ids))["hongda"]
    now = clock.now()
    first_counted = asyncio.Event()
    release_first = asyncio.Event()

    async def record(user: str, hold: bool) -> list[int]:
        async with db.transaction() as s:
            s.add(Activity(kind="visit", user_id=ids[user], customer_id=customer_id, occurred_at=now, source="wecom",
                           created_at=now))
            await s.flush()
            repo = CustomerRepo(s)
            await repo.lock(customer_id)
            reps = await repo.reps_since(customer_id, now - timedelta(days=30))
            if hold:
                first_counted.set()
                await release_first.wait()  # commit only after the second has started waiting
            return reps

    first = asyncio.create_task(record("zhangsan", hold=True))
    await first_counted.wait()
    second = asyncio.create_task(record("lisi", hold=False))
    await _until_waiting_on_advisory_lock(db)  # the second has inserted and now waits for the first
    assert not second.done()
    release_first.set()
    assert await first == [ids["zhangsan"]]
    assert sorted(await second) == sorted([ids["zhangsan"], ids["lisi"]])


async def _until_waiting_on_advisory_lock(db: Database) -> None:
    """Poll pg_locks (each poll is a query, no sleeping) until a session waits for an advisory lock."""
    for _ in range(2000):
        async with db.sessions() as s:
            waiting = await s.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"))
        if waiting:
            return
    raise AssertionError("the second transaction never waited for the customer lock")
