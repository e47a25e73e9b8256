"""What every sweep shares: batching, the working calendar, and who leads whom."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.elements import ColumnElement

from store.db import Database
from store.models import Escalation, OrgUnit, User

BATCH = 1000  # subjects handled per transaction; a sweep loops until a batch comes back short
IN_FLIGHT = 2  # PostgreSQL: batches written at once, so the server stores one while Python builds the next

B = TypeVar("B")


async def write_batches(db: Database, batches: AsyncIterator[B],
                        write: Callable[[AsyncSession, B], Awaitable[int]]) -> int:
    """Each batch `write`n in its own transaction; returns the sum of what the writes return.

    On PostgreSQL up to IN_FLIGHT batches are written at once, each on its own connection: a burst of
    thousands of due subjects (after an outage) costs the longer of building and storing, not their sum.
    SQLite has one writer, so there it is one batch after another. A batch that fails stops the sweep and
    re-raises once the batches already running have finished; every write is idempotent (escalations are
    unique per rule, subject and period), so the next run picks up what was left.
    """
    limit = IN_FLIGHT if db.engine.dialect.name == "postgresql" else 1
    running: set[asyncio.Task[int]] = set()
    total = 0

    async def one(batch: B) -> int:
        async with db.transaction() as s:
            return await write(s, batch)

    try:
        while True:
            while len(running) >= limit:  # wait for room before reading on: SQLite reads after the write
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                running -= done
                total += sum(task.result() for task in done)
            try:
                batch = await anext(batches)
            except StopAsyncIteration:
                break
            running.add(asyncio.create_task(one(batch)))
    finally:
        if running:
            await asyncio.wait(running)  # never leave a write behind, even when the producer failed
    return total + sum(task.result() for task in running)


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


def after_key(key: tuple[datetime, int] | None, col: Any, id_col: Any) -> ColumnElement[bool]:
    """Keyset paging on (time column, id): each batch starts after the last one, whatever it fired."""
    if key is None:
        return true()
    at, last_id = key
    return or_(col > at, and_(col == at, id_col > last_id))


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
    return (await Lines.load(session, [user_id])).manager.get(user_id)


@dataclass(frozen=True)
class Lines:
    """Who leads each of a batch's owners, found in two queries (not one per owner): the owner's manager
    (as `manager_of` decides) and direct superior, as users' WeCom ids (inactive or unknown: absent)."""

    manager: dict[int, int | None]
    superior: dict[int, int | None]
    wecom: dict[int, str]

    @classmethod
    async def load(cls, session: AsyncSession, user_ids: Iterable[int]) -> Lines:
        wanted = set(user_ids)
        if not wanted:
            return cls({}, {}, {})
        team = aliased(OrgUnit)
        parent = aliased(OrgUnit)
        rows = (await session.execute(
            select(User.id, User.superior_id, team.manager_id, parent.manager_id)
            .outerjoin(team, team.id == User.team_id)
            .outerjoin(parent, parent.id == team.parent_id)
            .where(User.id.in_(wanted))
        )).all()
        manager: dict[int, int | None] = {}
        superior: dict[int, int | None] = {}
        for uid, superior_id, team_manager, parent_manager in rows:  # team's manager, region's, superior
            superior[uid] = superior_id
            manager[uid] = next((m for m in (team_manager, parent_manager) if m is not None and m != uid),
                                superior_id)
        people = {u for u in (*manager.values(), *superior.values(), *wanted) if u is not None}
        wecom = {
            uid: userid for uid, userid in (await session.execute(
                select(User.id, User.wecom_userid).where(User.id.in_(people), User.active.is_(True))
            )).all() if userid
        }
        return cls(manager, superior, wecom)

    def userids(self, user_ids: Iterable[int | None]) -> list[str]:
        """`userids` from what was loaded: active users' WeCom ids, in order, without repeats."""
        return list(dict.fromkeys(self.wecom[u] for u in user_ids if u is not None and u in self.wecom))


async def superior_of(session: AsyncSession, user_id: int) -> int | None:
    user = await session.get(User, user_id)
    return user.superior_id if user is not None else None


async def region_manager(session: AsyncSession, region_id: int | None) -> int | None:
    unit = await session.get(OrgUnit, region_id) if region_id is not None else None
    return unit.manager_id if unit is not None else None


def iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
