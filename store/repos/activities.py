"""Activities (R14, R15), their follow-up tasks, where the rep last was, and ownership conflicts (R17)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import Location
from store.models import Activity, FollowUpTask, InboxMessage, OwnershipConflict


class ActivityRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(self, activity: Activity) -> Activity:
        self._s.add(activity)
        await self._s.flush()
        return activity

    async def by_source_ref(self, source_ref: str) -> Activity | None:
        return (
            await self._s.execute(select(Activity).where(Activity.source_ref == source_ref))
        ).scalar_one_or_none()

    async def open_visit(self, user_id: int, since: datetime) -> Activity | None:
        """The rep's latest visit started with "到达…" and not yet finished (R14)."""
        return (
            await self._s.execute(
                select(Activity)
                .where(Activity.user_id == user_id, Activity.kind == "visit", Activity.status == "open",
                       Activity.occurred_at >= since)
                .order_by(Activity.occurred_at.desc(), Activity.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()

    async def recent_activity(self, user_id: int, since: datetime) -> Activity | None:
        """The activity with a customer the rep recorded last, since `since` (a note without a customer
        goes there)."""
        recorded = func.coalesce(Activity.updated_at, Activity.created_at)
        return (
            await self._s.execute(
                select(Activity)
                .where(Activity.user_id == user_id, Activity.customer_id.is_not(None), recorded >= since)
                .order_by(recorded.desc(), Activity.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()

    async def last_location(self, channel: str, sender: str, since: datetime) -> Location | None:
        """The location the rep last shared (a location message or a LOCATION event) since `since` (R14)."""
        row = (
            await self._s.execute(
                select(InboxMessage.payload)
                .where(
                    InboxMessage.channel == channel,
                    InboxMessage.sender == sender,
                    InboxMessage.received_at >= since,
                    or_(InboxMessage.msg_type == "location",
                        and_(InboxMessage.msg_type == "event", InboxMessage.event == "location")),
                )
                .order_by(InboxMessage.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        loc: Any = row.get("location") if row else None
        if not isinstance(loc, dict):
            return None
        try:
            return Location(**loc)
        except TypeError:
            return None

    async def add_task(self, task: FollowUpTask) -> FollowUpTask:
        self._s.add(task)
        await self._s.flush()
        return task

    async def record_conflict(self, customer_id: int, period: str, owner_id: int | None, rep_ids: list[int],
                              now: datetime) -> bool:
        """R17: one row per customer and period; a later activity widens its rep list. True when new."""
        insert = pg_insert if self._s.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(OwnershipConflict)
            .values(customer_id=customer_id, period=period, owner_id=owner_id, rep_ids=rep_ids, first_at=now,
                    last_at=now, created_at=now)
            .on_conflict_do_nothing(index_elements=["customer_id", "period"])
            .returning(OwnershipConflict.id)
        )
        created = (await self._s.execute(stmt)).scalar_one_or_none()
        if created is not None:
            return True
        row = (
            await self._s.execute(
                select(OwnershipConflict)
                .where(OwnershipConflict.customer_id == customer_id, OwnershipConflict.period == period)
                .with_for_update()
            )
        ).scalar_one()
        row.rep_ids = sorted({*row.rep_ids, *rep_ids})
        row.last_at = now
        return False
