"""Escalations and their notices: what makes every time-based rule fire exactly once (R1–R17, R18).

`fire` inserts the escalation row, unique per (rule, subject, period), with INSERT … ON CONFLICT DO
NOTHING: a second sweep, a second process or a rerun after a crash finds the row and does nothing.
The caller adds the notices in the same transaction, so an escalation never exists without them.
Notices wait for working hours (R18) and are sent by jobs/notices.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, text
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.rules.calendar import WorkCalendar
from store.models import Escalation, Notice
from store.types import UTCDateTime


@dataclass(frozen=True)
class Firing:
    """One subject a sweep found due: what `fire_many` inserts."""

    subject_id: int
    period: str
    recipients: list[str]
    data: dict[str, Any] = field(default_factory=dict)
    task_id: str | None = None


def _kind(row: dict[str, Any]) -> str:
    return str(row.get("kind") or ("card" if row.get("card") is not None else "text"))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


_FIRE_PG = text(
    "INSERT INTO escalations (rule, subject_type, subject_id, period, status, recipients, data, task_id, created_at) "
    "SELECT :rule, :subject_type, u.subject_id, u.period, 'open', CAST(u.recipients AS JSON), CAST(u.data AS JSON), "
    "u.task_id, :now "
    "FROM unnest(CAST(:subject_ids AS BIGINT[]), CAST(:periods AS VARCHAR[]), CAST(:recipients AS TEXT[]), "
    "CAST(:data AS TEXT[]), CAST(:task_ids AS VARCHAR[])) AS u(subject_id, period, recipients, data, task_id) "
    "ON CONFLICT (rule, subject_type, subject_id, period) DO NOTHING "
    "RETURNING id, subject_id"
).bindparams(bindparam("now", type_=UTCDateTime()))

_NOTIFY_PG = text(
    "INSERT INTO notices (escalation_id, channel, recipient, kind, text, card, due_at, status, created_at) "
    "SELECT u.escalation_id, u.channel, u.recipient, u.kind, u.text, CAST(u.card AS JSON), :due, 'pending', :now "
    "FROM unnest(CAST(:escalation_ids AS BIGINT[]), CAST(:channels AS VARCHAR[]), CAST(:recipients AS VARCHAR[]), "
    "CAST(:kinds AS VARCHAR[]), CAST(:texts AS TEXT[]), CAST(:cards AS TEXT[])) "
    "AS u(escalation_id, channel, recipient, kind, text, card)"
).bindparams(bindparam("due", type_=UTCDateTime()), bindparam("now", type_=UTCDateTime()))


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

    async def fire_many(self, rule: str, subject_type: str, items: list[Firing], now: datetime) -> dict[int, int]:
        """`fire` for a batch in one statement: subject id -> new escalation id, for those that had not
        fired (a sweep over thousands of due subjects must not pay one round trip per subject)."""
        if not items:
            return {}
        if self._s.get_bind().dialect.name == "postgresql":
            return await self._fire_many_pg(rule, subject_type, items, now)
        insert = pg_insert if self._s.get_bind().dialect.name == "postgresql" else sqlite_insert
        # One compiled statement, the rows as a parameter list: SQLAlchemy sends them as batched
        # multi-row INSERTs with RETURNING ("insertmanyvalues"), without rebuilding SQL per batch.
        table = cast(Table, Escalation.__table__)  # Core, not the ORM's bulk path: a sweep writes thousands of rows
        stmt = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["rule", "subject_type", "subject_id", "period"])
            .returning(table.c.id, table.c.subject_id)
        )
        params = [
            {"rule": rule, "subject_type": subject_type, "subject_id": it.subject_id, "period": it.period,
             "status": "open", "recipients": it.recipients, "data": it.data, "task_id": it.task_id, "created_at": now}
            for it in items
        ]
        connection = await self._s.connection()
        result = await connection.execute(stmt, params)
        return {subject_id: esc_id for esc_id, subject_id in result.all()}

    async def _fire_many_pg(self, rule: str, subject_type: str, items: list[Firing],
                            now: datetime) -> dict[int, int]:
        """PostgreSQL: the batch as one statement over arrays (unnest), so the server loops over the rows,
        not the driver: 10,000 escalations in ~0.1 s instead of ~0.3 s as VALUES lists."""
        result = await self._s.execute(_FIRE_PG, {
            "rule": rule, "subject_type": subject_type, "now": now,
            "subject_ids": [it.subject_id for it in items], "periods": [it.period for it in items],
            "recipients": [_json(it.recipients) for it in items], "data": [_json(it.data) for it in items],
            "task_ids": [it.task_id for it in items],
        })
        return {subject_id: esc_id for esc_id, subject_id in result.all()}

    async def notify_many(self, rows: list[dict[str, Any]], *, now: datetime, calendar: WorkCalendar) -> int:
        """Notices in one statement: each dict has escalation_id, recipient and text (or card, or kind "card"
        alone for a card drawn when it is sent)."""
        if not rows:
            return 0
        due = calendar.next_open(now)
        if self._s.get_bind().dialect.name == "postgresql":  # arrays, as in `_fire_many_pg`
            await self._s.execute(_NOTIFY_PG, {
                "due": due, "now": now,
                "escalation_ids": [r["escalation_id"] for r in rows],
                "channels": [r.get("channel", "wecom") for r in rows],
                "recipients": [r["recipient"] for r in rows],
                "kinds": [_kind(r) for r in rows],
                "texts": [r.get("text") for r in rows],
                "cards": [None if r.get("card") is None else _json(r["card"]) for r in rows],
            })
            return len(rows)
        values = [
            {"escalation_id": r["escalation_id"], "channel": r.get("channel", "wecom"), "recipient": r["recipient"],
             "kind": _kind(r), "text": r.get("text"), "card": r.get("card"),
             "due_at": due, "status": "pending", "created_at": now}
            for r in rows
        ]
        connection = await self._s.connection()
        await connection.execute(sa_insert(cast(Table, Notice.__table__)), values)
        return len(values)

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
