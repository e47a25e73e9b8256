"""The outbox sender's database side: claiming rows, recording results, giving rows back; and the
backlog gauges. Every method is one short transaction: none is ever held across a network call.

Claiming takes due, unleased `wecom` rows whose earlier rows for the same recipient are all claimable
too (per-recipient order: a later row never overtakes an earlier pending one), trimmed by the
per-recipient throttle counted from `sent_at` in the database (so it survives restarts and follows the
clock). Claimed rows get `lease_until = now + lease_s` and, on their first claim, their
`duplicate_check_interval_s` (jobs/outbox/request.py); rows over the throttle get `next_attempt_at` =
when the window frees. On PostgreSQL claims are serialised by a transaction advisory lock and rows taken
with FOR UPDATE SKIP LOCKED; on SQLite BEGIN IMMEDIATE serialises them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.clock import Clock
from bot.config import Settings
from bot.metrics import Labels, Metrics
from jobs.outbox.policy import Claimed, Outcome
from jobs.outbox.request import next_duplicate_check_interval, uses_duplicate_check
from store.db import Database
from store.models import OutboxMessage

CHANNEL = "wecom"
# pg_advisory_xact_lock key ("salesbot outbox claim"): one claim at a time across processes. Without
# it, SKIP LOCKED would let a second sender claim row n+1 while row n of the same recipient is still
# being claimed by the first, and the two could then be delivered out of order. It also keeps the
# per-recipient rotation of duplicate-check intervals consistent.
CLAIM_LOCK_KEY = 0x5A1E5B07
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
_NO_SYNC = {"synchronize_session": False}


class OutboxRows:
    """The sender's reads and writes of the `outbox` table."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._is_pg = db.engine.dialect.name == "postgresql"

    # ------------------------------------------------------------------ claim

    async def claim(self, now: datetime) -> list[Claimed]:
        outbox = self._settings.outbox
        o, earlier = OutboxMessage, aliased(OutboxMessage)
        blocked = exists().where(
            earlier.channel == o.channel,
            earlier.recipient == o.recipient,
            earlier.status == "pending",
            earlier.id < o.id,
            or_(
                earlier.next_attempt_at > now,
                and_(earlier.lease_until.is_not(None), earlier.lease_until >= now),
            ),
        )
        stmt = (
            select(
                o.id, o.recipient, o.kind, o.payload, o.attempts, o.busy_retries, o.duplicate_check_interval_s
            )
            .where(
                o.channel == CHANNEL,
                o.status == "pending",
                o.next_attempt_at <= now,
                or_(o.lease_until.is_(None), o.lease_until < now),
                ~blocked,
            )
            .order_by(o.id)
            .limit(outbox.batch_size)
        )
        if self._is_pg:
            stmt = stmt.with_for_update(skip_locked=True, of=OutboxMessage.__table__)
        lease = now + timedelta(seconds=outbox.lease_s)
        async with self._db.transaction() as session:
            if self._is_pg:
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})
            rows = (await session.execute(stmt)).all()
            if not rows:
                return []
            by_recipient: dict[str, list[Row[Any]]] = {}
            for r in rows:
                by_recipient.setdefault(r.recipient, []).append(r)
            windows = await self._window_counts(session, list(by_recipient), now)
            take: list[Row[Any]] = []
            deferred: dict[datetime, list[int]] = {}
            for recipient, candidates in by_recipient.items():
                minute, hour = windows.get(recipient, (0, 0))
                room = max(
                    0, min(outbox.per_recipient_per_minute - minute, outbox.per_recipient_per_hour - hour)
                )
                take += candidates[:room]
                if len(candidates) > room:
                    free_at = await self._free_at(session, recipient, now, minute, hour, room)
                    deferred.setdefault(free_at, []).extend(r.id for r in candidates[room:])
            intervals: dict[int, int] = {}
            if take:
                await session.execute(
                    update(o).where(o.id.in_([r.id for r in take])).values(lease_until=lease),
                    execution_options=_NO_SYNC,
                )
                intervals = await self._assign_intervals(session, take)
            for free_at, ids in deferred.items():
                await session.execute(
                    update(o).where(o.id.in_(ids)).values(next_attempt_at=free_at), execution_options=_NO_SYNC
                )
        return [
            Claimed(
                id=r.id,
                recipient=r.recipient,
                kind=r.kind,
                payload=dict(r.payload),
                attempts=r.attempts,
                busy_retries=r.busy_retries,
                duplicate_check_interval_s=intervals.get(r.id, r.duplicate_check_interval_s),
                lease_until=lease,
            )
            for r in take
        ]

    async def _assign_intervals(self, session: AsyncSession, take: Sequence[Row[Any]]) -> dict[int, int]:
        """Give rows claimed for the first time their duplicate-check interval: per recipient, the next
        value after the one its latest row got (rows of one recipient are first claimed in id order)."""
        fresh = [r for r in take if r.duplicate_check_interval_s is None and uses_duplicate_check(r.kind)]
        if not fresh:
            return {}
        o = OutboxMessage
        latest = (
            select(func.max(o.id))
            .where(
                o.channel == CHANNEL,
                o.recipient.in_(sorted({r.recipient for r in fresh})),
                o.duplicate_check_interval_s.is_not(None),
            )
            .group_by(o.recipient)
        )
        found = await session.execute(select(o.recipient, o.duplicate_check_interval_s).where(o.id.in_(latest)))
        previous: dict[str, int | None] = {recipient: value for recipient, value in found.all()}
        base = self._settings.wecom.duplicate_check_interval_s
        assigned: dict[int, int] = {}
        for r in fresh:  # `take` lists each recipient's rows in id order
            value = next_duplicate_check_interval(previous.get(r.recipient), base)
            previous[r.recipient] = assigned[r.id] = value
        await session.execute(
            update(o)
            .where(o.id.in_(list(assigned)))
            .values(duplicate_check_interval_s=case(assigned, value=o.id)),
            execution_options=_NO_SYNC,
        )
        return assigned

    async def _window_counts(
        self, session: AsyncSession, recipients: list[str], now: datetime
    ) -> dict[str, tuple[int, int]]:
        """Per recipient: rows sent in the last minute and in the last hour (windows (now-d, now])."""
        o = OutboxMessage
        stmt = (
            select(o.recipient, func.sum(case((o.sent_at > now - MINUTE, 1), else_=0)), func.count())
            .where(
                o.channel == CHANNEL, o.status == "sent", o.recipient.in_(recipients), o.sent_at > now - HOUR
            )
            .group_by(o.recipient)
        )
        return {r: (int(m or 0), int(h)) for r, m, h in (await session.execute(stmt)).all()}

    async def _free_at(
        self, session: AsyncSession, recipient: str, now: datetime, minute: int, hour: int, taking: int
    ) -> datetime:
        """When the next row for `recipient` may go, given the rows sent in each window plus `taking`
        rows about to be sent now. With n sends in a window of length d and limit L, the next may go at
        the (n-L)-th oldest (0-based) + d."""
        outbox = self._settings.outbox
        free = now
        windows = (
            (minute, outbox.per_recipient_per_minute, MINUTE),
            (hour, outbox.per_recipient_per_hour, HOUR),
        )
        for count, limit, span in windows:
            n = count + taking
            if n < limit:
                continue
            k = n - limit
            if k < count:
                o = OutboxMessage
                oldest = await session.scalar(
                    select(o.sent_at)
                    .where(
                        o.channel == CHANNEL,
                        o.status == "sent",
                        o.recipient == recipient,
                        o.sent_at > now - span,
                    )
                    .order_by(o.sent_at)
                    .offset(k)
                    .limit(1)
                )
                at = oldest if oldest is not None else now
            else:
                at = now  # one of the rows being sent now
            free = max(free, at + span)
        return free

    # ------------------------------------------------------------------ results

    async def record(self, row: Claimed, outcome: Outcome, now: datetime) -> bool:
        """Store one attempt's outcome; False when the row's lease was lost meanwhile (left alone)."""
        o = OutboxMessage
        attempts = row.attempts + (1 if outcome.counts_attempt else 0)
        values: dict[str, Any] = {"attempts": attempts, "lease_until": None}
        if outcome.busy_retries is not None:
            values["busy_retries"] = outcome.busy_retries
        if outcome.action == "sent":
            # Recorded even if the lease was lost: the platform took it, whoever else tries again.
            where = [o.id == row.id, o.status == "pending"]
            values.update(
                status="sent", sent_at=now, platform_msgid=outcome.msgid, response_code=outcome.response_code,
                last_errcode=0, last_error=None,
            )  # fmt: skip
        else:
            where = [o.id == row.id, o.status == "pending", o.lease_until == row.lease_until]
            values.update(last_errcode=outcome.errcode, last_error=outcome.error)
            if outcome.action == "dead":
                values["status"] = "dead"
            elif outcome.action == "retry":
                values["next_attempt_at"] = now + timedelta(seconds=outcome.delay_s)
            else:
                values["next_attempt_at"] = outcome.until
        async with self._db.transaction() as session:
            result = await session.execute(update(o).where(*where).values(**values), execution_options=_NO_SYNC)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, rows: Sequence[Claimed], *, until: datetime | None) -> None:
        """Give back rows this run will not send (their lease), optionally not before `until`."""
        if not rows:
            return
        o = OutboxMessage
        values: dict[str, Any] = {"lease_until": None}
        if until is not None:
            values["next_attempt_at"] = until
        async with self._db.transaction() as session:
            await session.execute(
                update(o)
                .where(
                    o.id.in_([r.id for r in rows]),
                    o.status == "pending",
                    o.lease_until == rows[0].lease_until,
                )
                .values(**values),
                execution_options=_NO_SYNC,
            )


def register_outbox_gauges(metrics: Metrics, db: Database, clock: Clock) -> None:
    """`salesbot_outbox_backlog` (rows not yet delivered) and `salesbot_outbox_oldest_age_seconds`,
    read from the database when /metrics is scraped."""
    pending = OutboxMessage.status == "pending"

    async def backlog() -> dict[Labels, float]:
        async with db.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(OutboxMessage).where(pending))
        return {(): float(count or 0)}

    async def oldest_age() -> dict[Labels, float]:
        async with db.sessions() as session:
            oldest = await session.scalar(select(func.min(OutboxMessage.created_at)).where(pending))
        age = (clock.now() - oldest).total_seconds() if oldest is not None else 0.0
        return {(): max(age, 0.0)}

    metrics.gauge("salesbot_outbox_backlog", backlog)
    metrics.gauge("salesbot_outbox_oldest_age_seconds", oldest_age)
