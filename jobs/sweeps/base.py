"""What every sweep shares: batching, the working calendar, and who leads whom."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from store.models import Escalation, OrgUnit, User

BATCH = 1000  # subjects handled per transaction; a sweep loops until a batch comes back short


def not_fired(rule: str, subject_type: str, subject_id: ColumnElement[int] | InstrumentedAttribute[int],
              period: ColumnElement[str] | str) -> ColumnElement[bool]:
    """SQL: this (rule, subject, period) has no escalation yet. A correlated count, so each candidate is one
    look-up in the escalations' unique index: work scales with what is due, not with what already fired
    (PostgreSQL turns a NOT EXISTS into an anti-join over every escalation of the rule)."""
    fired = (
        select(func.count())
        .select_from(Escalation)
        .where(and_(Escalation.rule == rule, Escalation.subject_type == subject_type,
                    Escalation.subject_id == subject_id, Escalation.period == period))
        .scalar_subquery()
    )
    return fired == 0


async def userids(session: AsyncSession, user_ids: Iterable[int | None]) -> list[str]:
    """Active users' WeCom ids, in the order given, without repeats."""
    wanted = [u for u in dict.fromkeys(user_ids) if u is not None]
    if not wanted:
        return []
    rows = (await session.execute(
        select(User.id, User.wecom_userid).where(User.id.in_(wanted), User.active.is_(True))
    )).all()
    found = {uid: wecom for uid, wecom in rows if wecom}
    return [found[u] for u in wanted if u in found]


async def manager_of(session: AsyncSession, user_id: int) -> int | None:
    """The manager of a user's team (if that is not the user), else the region's, else the direct superior."""
    user = await session.get(User, user_id)
    if user is None:
        return None
    unit_id = user.team_id
    for _ in range(2):
        unit = await session.get(OrgUnit, unit_id) if unit_id is not None else None
        if unit is None:
            break
        if unit.manager_id is not None and unit.manager_id != user_id:
            return unit.manager_id
        unit_id = unit.parent_id
    return user.superior_id


async def superior_of(session: AsyncSession, user_id: int) -> int | None:
    user = await session.get(User, user_id)
    return user.superior_id if user is not None else None


async def region_manager(session: AsyncSession, region_id: int | None) -> int | None:
    unit = await session.get(OrgUnit, region_id) if region_id is not None else None
    return unit.manager_id if unit is not None else None


def iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
