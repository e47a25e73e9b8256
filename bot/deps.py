"""The objects a running salesbot shares: built once in create_app (or the CLI), passed explicitly."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.clock import Clock
from bot.config import Settings
from bot.metrics import Metrics
from store.db import Database

if TYPE_CHECKING:
    from bot.channels.wecom.api import WeComClient
    from bot.dispatch.dispatcher import Dispatcher
    from jobs.outbox_sender import OutboxSender
    from store.repos.inbox import InboxWriter


@dataclass
class Deps:
    settings: Settings
    db: Database
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    dispatcher: Dispatcher | None = None
    inbox: InboxWriter | None = None
    wecom: WeComClient | None = None
    sender: OutboxSender | None = None

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Start a tracked background task: kept in a set so it is neither lost nor garbage-collected."""
        task = asyncio.create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait until every tracked task (and any task they start) has finished."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    def process_later(self, inbox_id: int, channel: str, sender: str) -> None:
        """Hand a freshly stored inbox row to the dispatcher in a tracked task (started in call order,
        which keeps one user's messages in order)."""
        assert self.dispatcher is not None
        self.spawn(self.dispatcher.process(inbox_id, channel, sender), name=f"inbox-{inbox_id}")

    def wake_sender(self) -> None:
        self.outbox_wakeup.set()


DEPS = web.AppKey("deps", Deps)
