"""The dispatcher: takes one stored inbox row through the middleware chain to a handler.

Middleware order (outermost first), and why:
1. error guard        — any exception is recorded on the inbox row and retried later, never lost.
2. conversation lock  — one user's messages are handled one at a time, in arrival order (an asyncio
                        lock in the process; on PostgreSQL also an advisory lock, for several processes).
3. unit of work       — one transaction: claim the row, run the handler, write state + outbox, mark done.
4. user resolution    — identity from the verified envelope only; unknown senders get a polite reply.
Then the root router picks the handler (state filters first, then intents).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, text, update

from bot.channels.base import IncomingMessage, Reply, Text
from bot.clock import Clock
from bot.config import Settings
from bot.dispatch.context import Context, FlowState, Repos
from bot.dispatch.router import Router
from bot.metrics import Metrics
from store.db import Database
from store.models import InboxMessage
from store.repos.outbox import enqueue

if TYPE_CHECKING:
    from bot.nlu.service import Nlu
    from bot.views.cache import ViewCache

log = logging.getLogger(__name__)

NOT_ENABLED = "你好！你的账号还没有开通 salesbot，请联系管理员（销售运营）把你加入团队后再来找我。"
PROCESSING_FAILED = "抱歉，刚才这条消息我没能处理成功，系统会自动重试，不需要重新发送。"
# Message types a person sends on purpose (events such as LOCATION reports get no reply).
USER_MESSAGE_TYPES = frozenset({"text", "image", "voice", "video", "location", "link", "file"})


@dataclass
class Job:
    """One inbox row on its way through the chain; the unit of work fills in `ctx`."""

    inbox_id: int
    channel: str
    sender: str
    ctx: Context | None = None


Next = Callable[[Job], Awaitable[None]]


@dataclass
class _ConversationLocks:
    """Per-conversation asyncio locks, dropped when nobody holds or waits for them."""

    locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = field(default_factory=dict)

    async def run(self, key: tuple[str, str], call: Callable[[], Awaitable[None]]) -> None:
        lock, users = self.locks.get(key, (asyncio.Lock(), 0))
        self.locks[key] = (lock, users + 1)
        try:
            async with lock:
                await call()
        finally:
            lock, users = self.locks[key]
            if users <= 1:
                del self.locks[key]
            else:
                self.locks[key] = (lock, users - 1)


class Dispatcher:
    def __init__(
        self,
        db: Database,
        router: Router,
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        on_outbox: Callable[[], None] = lambda: None,
    ) -> None:
        self._db = db
        self._router = router
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._on_outbox = on_outbox
        self._locks = _ConversationLocks()
        self._slots = asyncio.Semaphore(max(1, settings.database.pool_size - 1))
        self._chain: list[Callable[[Job, Next], Awaitable[None]]] = [
            self._error_guard,
            self._conversation_lock,
            self._unit_of_work,
            self._resolve_user,
        ]
        self._after_lock = self._chain.index(self._unit_of_work)
        # Until a full recovery pass has run, rows a crash left pending may precede a new message of
        # the same conversation: look for them (a query per message). Afterwards every stored row has
        # its own task started in order, so the look-up is skipped (it cost ~2.4 ms CPU a message).
        self._caught_up = False
        self.nlu: Nlu | None = None  # set once loaded (connected()); handlers that parse text need it
        self.views: ViewCache | None = None  # R20: cleared after every unit of work that may have written

    # ------------------------------------------------------------------ entry points

    async def process(self, inbox_id: int, channel: str | None = None, sender: str | None = None) -> None:
        """Process one inbox row (idempotent: a row already done is skipped).

        Callers that know the row's channel and sender pass them: the conversation lock is then taken
        before anything awaits, so one user's messages are handled in the order they were stored.
        """
        if channel is None or sender is None:
            async with self._db.sessions() as session:
                head = (
                    await session.execute(
                        select(InboxMessage.channel, InboxMessage.sender).where(InboxMessage.id == inbox_id)
                    )
                ).one_or_none()
            if head is None:
                return
            channel, sender = head.channel, head.sender
        await self._call(0, Job(inbox_id, channel, sender))

    async def recover(self, now: datetime | None = None, *, grace_s: float = 0, limit: int = 500) -> int:
        """Process rows left pending (a crash; older than `grace_s`, younger ones are probably in
        flight) and failed rows due for retry, until none is left. Returns rows attempted.

        Rows are started in id order, concurrently across conversations: a slow conversation does not
        hold back the others, and one user's rows keep their order (conversation lock, FIFO)."""
        now = now or self._clock.now()
        attempted, after = 0, 0
        while True:
            async with self._db.sessions() as session:
                rows = (
                    await session.execute(
                        select(InboxMessage.id, InboxMessage.channel, InboxMessage.sender)
                        .where(
                            InboxMessage.id > after,
                            ((InboxMessage.status == "pending")
                             & (InboxMessage.received_at <= now - timedelta(seconds=grace_s)))
                            | ((InboxMessage.status == "failed") & (InboxMessage.next_attempt_at <= now)),
                        )
                        .order_by(InboxMessage.id)
                        .limit(limit)
                    )
                ).all()
            if not rows:
                if grace_s == 0:
                    self._caught_up = True
                return attempted
            await asyncio.gather(*(self.process(r.id, r.channel, r.sender) for r in rows))
            attempted += len(rows)
            after = rows[-1].id

    # ------------------------------------------------------------------ the chain

    async def _call(self, index: int, job: Job) -> None:
        if index < len(self._chain):
            await self._chain[index](job, lambda j: self._call(index + 1, j))
        else:
            await self._route(job)

    async def _error_guard(self, job: Job, call_next: Next) -> None:
        try:
            await call_next(job)
        except Exception as exc:
            log.exception("processing inbox row %s failed", job.inbox_id)
            self._metrics.inc("salesbot_processing_failures_total", channel=job.channel)
            await self._record_failure(job, exc)

    async def _conversation_lock(self, job: Job, call_next: Next) -> None:
        async def in_order() -> None:
            # Rows of this conversation stored earlier but never processed (a crash) go first, each
            # under its own error guard. Failed rows do not hold newer ones back: they are retried
            # with backoff, and a bug in one message must not silence a rep for hours.
            for older in [] if self._caught_up else await self._older_pending(job):
                await self._error_guard(older, lambda j: self._call(self._after_lock, j))
            await call_next(job)

        await self._locks.run((job.channel, job.sender), in_order)

    async def _older_pending(self, job: Job) -> list[Job]:
        async with self._db.sessions() as session:
            ids = (
                await session.scalars(
                    select(InboxMessage.id)
                    .where(
                        InboxMessage.channel == job.channel,
                        InboxMessage.sender == job.sender,
                        InboxMessage.status == "pending",
                        InboxMessage.id < job.inbox_id,
                    )
                    .order_by(InboxMessage.id)
                )
            ).all()
        return [Job(i, job.channel, job.sender) for i in ids]

    async def _unit_of_work(self, job: Job, call_next: Next) -> None:
        # At most `slots` units of work at once: a burst of messages must not take every database
        # connection (and on SQLite the write lock) away from the inbox writer, whose commit gates the 200.
        async with self._slots:
            await self._unit_of_work_now(job, call_next)

    async def _unit_of_work_now(self, job: Job, call_next: Next) -> None:
        now = self._clock.now()
        wrote_outbox = False
        async with self._db.transaction() as session:
            if self._db.engine.dialect.name == "postgresql":
                # The in-process lock does not reach other processes: serialise the conversation in
                # the database too, for as long as this transaction lives.
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{job.channel}:{job.sender}"}
                )
            row = (
                await session.execute(
                    select(InboxMessage).where(InboxMessage.id == job.inbox_id).with_for_update()
                )
            ).scalar_one_or_none()
            if row is None or row.status in ("done", "dead"):
                return
            message = IncomingMessage.from_payload(row.payload)
            repos = Repos.for_session(session)
            job.ctx = Context(
                message=message,
                session=session,
                repos=repos,
                clock=self._clock,
                settings=self._settings,
                now=now,
                inbox_id=job.inbox_id,
                nlu=self.nlu,
                views=self.views,
            )
            await call_next(job)
            ctx = job.ctx
            # Saved when changed, and on every message inside a flow: the expiry counts from the last word.
            if ctx.user is not None and (ctx.state.changed or ctx.state.flow is not None):
                await repos.conversations.save(
                    message.channel,
                    message.sender,
                    user_id=ctx.user.id,
                    flow=ctx.state.flow,
                    step=ctx.state.step,
                    data=ctx.state.data,
                    now=now,
                    ttl=timedelta(minutes=self._settings.conversation.state_ttl_minutes),
                )
            for index, out in enumerate(ctx.outgoing):
                enqueue(
                    session,
                    channel=message.channel,
                    recipient=out.recipient,
                    reply=out.reply,
                    now=now,
                    text_max_bytes=self._settings.outbox.text_max_bytes,
                    inbox_id=job.inbox_id,
                    dedup_key=f"in:{job.inbox_id}:{index}",
                )
                wrote_outbox = True
            row.status, row.processed_at, row.last_error = "done", now, None
        if self.views is not None and not (job.ctx is not None and job.ctx.read_only):
            self.views.invalidate()  # committed: a view computed before this write must not be served
        self._metrics.inc("salesbot_processed_total", channel=job.channel)
        if wrote_outbox:
            self._on_outbox()

    async def _resolve_user(self, job: Job, call_next: Next) -> None:
        ctx = job.ctx
        assert ctx is not None
        ctx.user = await ctx.repos.users.by_channel_id(ctx.message.channel, ctx.message.sender)
        if ctx.user is None:
            # Nothing of an unknown sender is stored beyond the inbox row (and our reply).
            if ctx.message.msg_type in USER_MESSAGE_TYPES:
                ctx.reply(Text(NOT_ENABLED))
            return
        state = await ctx.repos.conversations.load(ctx.message.channel, ctx.message.sender, ctx.now)
        if state is not None and state.flow:
            ctx.state = FlowState(flow=state.flow, step=state.step, data=dict(state.data))
        await call_next(job)

    async def _route(self, job: Job) -> None:
        ctx = job.ctx
        assert ctx is not None
        found = await self._router.resolve(ctx)
        if found is None:
            return
        handler, kwargs = found
        result = await handler(ctx, **kwargs)
        replies: list[Reply] = [] if result is None else result if isinstance(result, list) else [result]
        for reply in replies:
            ctx.reply(reply)

    # ------------------------------------------------------------------ failures

    async def _record_failure(self, job: Job, exc: Exception) -> None:
        """Record the failure on the row; retried with backoff until max attempts, then dead."""
        now = self._clock.now()
        inbox = self._settings.inbox
        try:
            async with self._db.transaction() as session:
                row = await session.get(InboxMessage, job.inbox_id, with_for_update=True)
                if row is None or row.status in ("done", "dead"):
                    return
                attempts = row.attempts + 1
                delay = min(inbox.retry_base_s * 2 ** (attempts - 1), inbox.retry_max_s)
                await session.execute(
                    update(InboxMessage)
                    .where(InboxMessage.id == job.inbox_id)
                    .values(
                        attempts=attempts,
                        status="dead" if attempts >= inbox.max_attempts else "failed",
                        next_attempt_at=now + timedelta(seconds=delay),
                        last_error=f"{type(exc).__name__}: {exc}"[:2000],
                    )
                )
                if attempts == 1 and row.msg_type in USER_MESSAGE_TYPES:
                    enqueue(
                        session,
                        channel=row.channel,
                        recipient=row.sender,
                        reply=Text(PROCESSING_FAILED),
                        now=now,
                        inbox_id=job.inbox_id,
                        dedup_key=f"fail:{job.inbox_id}",
                    )
            self._on_outbox()
        except Exception:
            log.exception("could not record the failure of inbox row %s; recovery will retry it", job.inbox_id)
