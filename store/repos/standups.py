"""Stand-up answers (R16): one per rep and week, the latest answer wins."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import StandupAnswer, User

# What a later answer of the same week replaces (everything but who, which week and when first given).
ANSWER_FIELDS = ("stuck", "stuck_customer_ids", "support", "support_user_ids", "resolve_by", "keywords", "raw",
                 "prompted")
TEAM_LOCK_SPACE = 18  # pg_advisory_xact_lock(space, key) key space for a team's stand-up (customers use 17)


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

    async def of_week(self, week: date, user_ids: Sequence[int]) -> dict[int, StandupAnswer]:
        """The week's answers of these people by user id, without locking them (the team table, R16)."""
        if not user_ids:
            return {}
        rows = await self._s.scalars(
            select(StandupAnswer).where(StandupAnswer.week == week, StandupAnswer.user_id.in_(list(user_ids)))
        )
        return {row.user_id: row for row in rows}

    async def team_reps(self, team_id: int) -> list[User]:
        """A team's active reps (role "rep"), the people its stand-up table covers (R16)."""
        users = await self._s.scalars(
            select(User).where(User.team_id == team_id, User.active.is_(True)).order_by(User.id)
        )
        return [u for u in users if "rep" in (u.roles or [])]

    async def lock_team(self, team_id: int) -> None:
        """Serialise "has the whole team answered?" until the transaction ends (PostgreSQL advisory lock):
        two reps answering at once in READ COMMITTED would each miss the other's new answer, and the
        early table would never go. SQLite has a single writer anyway."""
        if self._s.get_bind().dialect.name == "postgresql":
            await self._s.execute(text("SELECT pg_advisory_xact_lock(:space, :key)"),
                                  {"space": TEAM_LOCK_SPACE, "key": team_id % 2_147_483_647})
