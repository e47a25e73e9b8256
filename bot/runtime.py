"""Building and connecting the shared objects, for the web app and the CLI alike."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from sqlalchemy import func, select

from bot.channels.wecom.api import WeComClient
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.deps import Deps
from bot.dispatch.dispatcher import Dispatcher
from bot.dispatch.router import Router
from bot.metrics import Labels
from bot.nlu.lexicon import Lexicon
from bot.nlu.service import Nlu
from bot.views.cache import ViewCache
from handlers import build_router
from jobs.media_fetch import MediaFetcher
from jobs.outbox_sender import OutboxSender, register_outbox_gauges
from store.db import Database, check_database
from store.migrate import upgrade
from store.models import InboxMessage
from store.repos.inbox import InboxWriter

log = logging.getLogger(__name__)


def build_deps(
    settings: Settings, clock: Clock | None = None, router: Router | None = None, lexicon: Lexicon | None = None
) -> Deps:
    """Everything that needs no running loop or connection: database handle, inbox writer, dispatcher.

    `router` defaults to the product's handlers (tests may pass their own); `lexicon` (jieba, ~1 s to
    build) is loaded at start-up unless one is given (tests share one per session)."""
    db = Database.open(
        settings.database.url,
        busy_timeout_ms=settings.database.sqlite_busy_timeout_ms,
        pool_size=settings.database.pool_size,
    )
    deps = Deps(settings=settings, db=db, clock=clock or SystemClock(), lexicon=lexicon)
    deps.inbox = InboxWriter(db, max_batch=settings.inbox.group_commit_max_batch)
    deps.dispatcher = Dispatcher(
        db, router or build_router(), settings, deps.clock, deps.metrics, on_outbox=deps.after_message
    )
    deps.views = deps.dispatcher.views = ViewCache(settings.views.max_staleness_s)
    return deps


@asynccontextmanager
async def connected(deps: Deps, *, upgrade_db: bool | None = None) -> AsyncIterator[Deps]:
    """Check (and upgrade) the database, open the HTTP session and the WeCom client; close all on exit."""
    settings = deps.settings
    try:
        if settings.database.auto_upgrade if upgrade_db is None else upgrade_db:
            await upgrade(deps.db.engine)
        log.info("database ready: %s", await check_database(deps.db.engine))
        timeout = aiohttp.ClientTimeout(total=settings.wecom.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            deps.wecom = WeComClient(http, settings.wecom, deps.clock, deps.metrics)
            deps.sender = OutboxSender(deps.db, deps.wecom, settings, deps.clock, deps.metrics)
            deps.media = MediaFetcher(deps.db, deps.wecom, settings, deps.clock, deps.metrics)
            register_outbox_gauges(deps.metrics, deps.db, deps.clock)
            _register_inbox_gauges(deps)
            yield deps
    finally:
        await deps.db.close()


async def start_nlu(deps: Deps) -> None:
    """Load the language understanding (jieba, about a second, in a thread) for message processing.

    Only processes that dispatch messages need it (serve, chat, demo), not one-off CLI jobs."""
    deps.nlu = await Nlu.load(deps.settings, deps.lexicon)
    deps.lexicon = deps.nlu.lexicon
    if deps.dispatcher is not None:
        deps.dispatcher.nlu = deps.nlu


def _register_inbox_gauges(deps: Deps) -> None:
    async def backlog() -> dict[Labels, float]:
        async with deps.db.sessions() as session:
            rows = (
                await session.execute(
                    select(InboxMessage.status, func.count())
                    .where(InboxMessage.status.in_(("pending", "failed", "dead")))
                    .group_by(InboxMessage.status)
                )
            ).all()
        found = {status: float(count) for status, count in rows}
        return {(("status", s),): found.get(s, 0.0) for s in ("pending", "failed", "dead")}

    deps.metrics.gauge("salesbot_inbox_backlog", backlog)
