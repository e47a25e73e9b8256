"""Stand-up answers (R16): one per rep and week, the latest answer wins."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import StandupAnswer, User

# What a later answer of the same week replaces (everything but who, which week and when first given).
ANSWER_FIELDS = ("stuck", "stuck_customer_ids", "support", "support_user_ids", "resolve_by", "keywords", "raw",
                 "prompted")


class StandupRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def for_week(self, user_id: int, week: date) -> StandupAnswer | None:
        return (
            await self._s.execute(
                select(StandupAnswer).where(StandupAnswer.user_id == user_id, StandupAnswer.week == week)
                .with_for_update()
            )
        ).scalar_one_or_none()

    async def add(self, answer: StandupAnswer) -> StandupAnswer:
        self._s.add(answer)
        await self._s.flush()
        return answer

    async def put(self, answer: StandupAnswer, now: datetime) -> tuple[StandupAnswer, bool]:
        """Store `answer` (not yet in the session) as the rep's answer for its week: a new row, or the
        week's existing row overwritten with it (updated_at = now). True when an earlier answer was replaced."""
        existing = await self.for_week(answer.user_id, answer.week)
        if existing is None:
            return await self.add(answer), False
        for name in ANSWER_FIELDS:
            setattr(existing, name, getattr(answer, name))
        existing.updated_at = now
        await self._s.flush()
        return existing, True

    async def directory(self) -> list[User]:
        """The active people, whose names a rep may give as the support needed (R16)."""
        return list((await self._s.scalars(select(User).where(User.active.is_(True)).order_by(User.id))).all())
