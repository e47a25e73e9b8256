"""Group commit: concurrent callbacks share commits; duplicates within and across batches are caught."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from bot.channels.base import IncomingMessage
from bot.clock import SettableClock
from store.models import InboxMessage
from store.repos.inbox import InboxWriter
from tests.conftest import START


def message(n: int) -> IncomingMessage:
    return IncomingMessage("wecom", f"msg:{n}", f"user{n % 7}", "text", START, text=f"第{n}条")


async def test_concurrent_stores_share_commits_and_dedup(db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    writer = InboxWriter(db, max_batch=64)
    writer.start()
    try:
        # 300 distinct messages, each also sent twice more (WeCom's retries), all at once.
        results = await asyncio.gather(*(writer.store(message(n % 300), clock.now()) for n in range(900)))
        assert sum(r.new for r in results) == 300
        assert len({r.inbox_id for r in results if r.new}) == 300
        assert writer.batches < 300 / 4  # far fewer commits than rows: group commit
        # A late retry of a stored message, in a batch of its own.
        late = await writer.store(message(5), clock.now())
        assert not late.new
    finally:
        await writer.stop()
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(InboxMessage)) == 300
