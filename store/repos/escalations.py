"""Escalations and their notices: what makes every time-based rule fire exactly once (R1–R17, R18).

`fire` inserts the escalation row, unique per (rule, subject, period), with INSERT … ON CONFLICT DO
NOTHING: a second sweep, a second process or a rerun after a crash finds the row and does nothing.
The caller adds the notices in the same transaction, so an escalation never exists without them.
Notices wait for working hours (R18) and are sent by jobs/notices.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.rules.calendar import WorkCalendar
from store.models import Escalation, Notice


class EscalationRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def fire(self, rule: str, subject_type: str, subject_id: int, period: str, now: datetime, *,
                   recipients: list[str], data: dict[str, Any] | None = None,
                   task_id: str | None = None) -> Escalation | None:
        """The new escalation, or None when this (rule, subject, period) already fired."""
        insert = pg_insert if self._s.get_bind().dialect.name == "postgresql" else sqlite_insert
        stmt = (
            insert(Escalation)
            .values(rule=rule, subject_type=subject_type, subject_id=subject_id, period=period, status="open",
                    recipients=recipients, data=data or {}, task_id=task_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["rule", "subject_type", "subject_id", "period"])
            .returning(Escalation.id)
        )
        new_id = (await self._s.execute(stmt)).scalar_one_or_none()
        return None if new_id is None else await self._s.get(Escalation, new_id)

    def notify(self, escalation: Escalation, recipient: str, *, now: datetime, calendar: WorkCalendar,
               text: str | None = None, card: dict[str, Any] | None = None, channel: str = "wecom") -> Notice:
        """A notice for one person (or "a|b" for one card to several), due when working hours next open."""
        notice = Notice(escalation_id=escalation.id, channel=channel, recipient=recipient,
                        kind="card" if card is not None else "text", text=text, card=card,
                        due_at=calendar.next_open(now), status="pending", created_at=now)
        self._s.add(notice)
        return notice

    async def by_task_id(self, task_id: str, *, for_update: bool = False) -> Escalation | None:
        stmt = select(Escalation).where(Escalation.task_id == task_id)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self._s.execute(stmt)).scalar_one_or_none()

    async def count(self, rule: str, subject_type: str, subject_id: int, *, since: datetime | None = None) -> int:
        """How many times a rule fired for a subject (since a moment): R3's ignored nudges."""
        stmt = select(func.count()).select_from(Escalation).where(
            Escalation.rule == rule, Escalation.subject_type == subject_type, Escalation.subject_id == subject_id
        )
        if since is not None:
            stmt = stmt.where(Escalation.created_at > since)
        return int((await self._s.execute(stmt)).scalar_one())
