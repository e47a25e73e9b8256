"""Nothing lost: a crash after the inbox commit, and processing failures, end in exactly one reply."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import SettableClock
from bot.deps import Deps
from bot.dispatch.dispatcher import PROCESSING_FAILED, Dispatcher
from store.models import InboxMessage
from tests.fakes.wecom_api import running_fake_wecom
from tests.harness import running_bot, seed_team


async def test_crash_between_inbox_commit_and_processing(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_fake_wecom(clock) as fake:
        crash = pytest.MonkeyPatch()
        crash.setattr(Deps, "process_later", lambda self, *row: None)  # stored rows are never processed
        async with running_bot(db_url, clock, fake=fake, run_sender=False, recover_on_start=False) as bot:
            crash.undo()  # the running app keeps the crashed behaviour; the next start is healthy
            assert (await bot.say("zhangsan", "帮助")).status == 200
            [row] = await bot.inbox()
            assert row.status == "pending"  # committed before the 200, never processed
        assert fake.delivered("zhangsan") == []
        # The server starts again: the pending row is processed and answered, once.
        async with running_bot(db_url, clock, fake=fake, run_sender=False) as bot:
            await bot.settle()
            [row] = await bot.inbox()
            assert row.status == "done"
            assert len(fake.delivered("zhangsan")) == 1
        async with running_bot(db_url, clock, fake=fake, run_sender=False) as bot:
            await bot.settle()
            assert len(fake.delivered("zhangsan")) == 1


async def test_processing_failure_is_recorded_and_retried(  # type: ignore[no-untyped-def]
    db_url: str, db, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_team(db, clock)
    original = Dispatcher._route
    failures = {"left": 2}

    async def flaky(self: Dispatcher, job: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database hiccup")
        await original(self, job)

    monkeypatch.setattr(Dispatcher, "_route", flaky)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.say("zhangsan", "帮助")
        await bot.settle()
        [row] = await bot.inbox()
        assert (row.status, row.attempts) == ("failed", 1)
        assert "database hiccup" in (row.last_error or "")
        assert bot.deps.metrics.total("salesbot_processing_failures_total") == 1
        # The user hears once that it will be retried, not silence.
        assert [m.content for m in bot.fake.delivered("zhangsan")] == [PROCESSING_FAILED]

        assert bot.deps.dispatcher is not None
        assert await bot.deps.dispatcher.recover(clock.now()) == 0  # not due yet (backoff)
        clock.advance(seconds=31)
        await bot.deps.dispatcher.recover(clock.now())  # second failure
        clock.advance(seconds=61)
        await bot.deps.dispatcher.recover(clock.now())  # succeeds
        await bot.settle()
        [row] = await bot.inbox()
        assert (row.status, row.attempts) == ("done", 2)
        contents = [m.content or "" for m in bot.fake.delivered("zhangsan")]
        assert len(contents) == 2 and "salesbot 能帮你做什么" in contents[1]


async def test_failure_after_max_attempts_is_dead_not_lost(  # type: ignore[no-untyped-def]
    db_url: str, db, clock: SettableClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_team(db, clock)

    async def always(self: Dispatcher, job: Any) -> None:
        raise ValueError("bug")

    monkeypatch.setattr(Dispatcher, "_route", always)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.say("zhangsan", "帮助")
        await bot.deps.drain()
        assert bot.deps.dispatcher is not None
        for _ in range(10):
            clock.advance(timedelta(hours=2))
            await bot.deps.dispatcher.recover(clock.now())
        async with bot.deps.db.sessions() as s:
            row = (await s.scalars(select(InboxMessage))).one()
        assert (row.status, row.attempts) == ("dead", bot.deps.settings.inbox.max_attempts)
        metrics = await (await bot.client.get("/metrics")).text()
        assert 'salesbot_inbox_backlog{status="dead"} 1' in metrics
