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
    from bot.nlu.lexicon import Lexicon
    from bot.nlu.service import Nlu
    from bot.views.cache import ViewCache
    from jobs.media_fetch import MediaFetcher
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
    media_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    dispatcher: Dispatcher | None = None
    inbox: InboxWriter | None = None
    wecom: WeComClient | None = None
    sender: OutboxSender | None = None
    media: MediaFetcher | None = None
    lexicon: Lexicon | None = None  # given (tests share one) or loaded at start-up (about a second)
    nlu: Nlu | None = None
    views: ViewCache | None = None  # R20: cached manager views, cleared by any committed write

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

    def wake_media(self) -> None:
        """An attachment row was committed: fetch it now rather than at the next interval (R6)."""
        self.media_wakeup.set()

    def after_message(self) -> None:
        """A message's unit of work committed replies: deliver them, and fetch any media it stored (an
        attachment always comes with a reply, so one hook serves both; a spurious wake costs one query)."""
        self.wake_sender()
        self.wake_media()


DEPS = web.AppKey("deps", Deps)
