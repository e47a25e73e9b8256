"""The local channel: a terminal chat through the same inbox, dispatcher, handlers and outbox.

Messages are stored with channel "local" and the sender's WeCom userid, so identity resolution,
flows and state behave exactly as they do behind WeCom; replies are read back from the outbox.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from bot.channels.base import IncomingMessage
from bot.deps import Deps
from bot.nlu.text import clean
from store.models import OutboxMessage


class LocalChat:
    def __init__(self, deps: Deps, userid: str) -> None:
        self._deps = deps
        self.userid = userid

    async def say(self, text: str) -> list[str]:
        """Send one line as `userid`; returns the bot's replies to this user, in order."""
        deps = self._deps
        assert deps.inbox is not None and deps.dispatcher is not None
        now = deps.clock.now()
        # A terminal can hand over what no platform would (lone surrogates, control bytes): made safe
        # here, at the edge, like the WeCom callback's UTF-8 and XML checks.
        text = clean(text)
        message = IncomingMessage(
            channel="local",
            dedup_key=f"local:{uuid.uuid4()}",
            sender=self.userid,
            msg_type="text",
            created_at=now,
            text=text,
        )
        stored = await deps.inbox.store(message, now)
        if stored.inbox_id is not None:
            await deps.dispatcher.process(stored.inbox_id, message.channel, message.sender)
        return await self.collect()

    async def collect(self) -> list[str]:
        """Take (mark sent) every pending local reply addressed to this user."""
        deps = self._deps
        async with deps.db.transaction() as session:
            rows = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.channel == "local",
                        OutboxMessage.recipient == self.userid,
                        OutboxMessage.status == "pending",
                    )
                    .order_by(OutboxMessage.id)
                )
            ).all()
            now = deps.clock.now()
            for row in rows:
                row.status, row.sent_at, row.attempts = "sent", now, row.attempts + 1
        return [str(row.payload.get("content") or row.payload) for row in rows]
