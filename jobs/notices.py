"""R18 + batching: send the rules' notices that are due, only inside working hours, one digest per person.

A notice waits in `notices` until its due time (the next working-hours opening when it was written).
Each run, inside working hours, takes what is due, and per recipient writes one outbox row: a card as
itself, texts as one message (a digest when there are several: WeCom silently drops past 30 messages a
minute to one person, and a burst reads as spam). Notices and their outbox rows are written in one
transaction; on PostgreSQL the rows are claimed with SKIP LOCKED, so two processes never send one twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import TemplateCard, Text
from bot.config import Settings
from bot.rules.calendar import WorkCalendar
from store.db import Database
from store.models import Escalation, Lead, Notice, Opportunity
from store.repos.outbox import RECIPIENT_MAX, enqueue

log = logging.getLogger(__name__)

BATCH = 500
NOTICES_LOCK = 18  # two-key advisory lock space: the notices sender
DIGEST_TITLE = "📋 你有 {n} 条提醒："
DIGEST_MORE = "……另有 {n} 条，处理完上面的再看"


def calendar_of(settings: Settings) -> WorkCalendar:
    h = settings.hours
    return WorkCalendar.parse(h.start, h.end, h.weekdays, h.holidays, h.workdays)


async def send_due_notices(db: Database, settings: Settings, now: datetime) -> int:
    """Outbox rows for the notices due at `now` (none outside working hours); returns notices sent."""
    if not calendar_of(settings).is_open(now):
        return 0
    sent = 0
    async with db.transaction() as session:
        if db.engine.dialect.name == "postgresql":
            # One sender at a time: two would each lock part of a person's notices and send two digests.
            # The other process simply skips this run (its next run, or this one, sends the rest).
            got = await session.scalar(text("SELECT pg_try_advisory_xact_lock(:space, 0)"), {"space": NOTICES_LOCK})
            if not got:
                return 0
        stmt = (
            select(Notice)
            .where(Notice.status == "pending", Notice.due_at <= now)
            .order_by(Notice.channel, Notice.recipient, Notice.id)
            .limit(BATCH)
        )
        if db.engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        notices = await _still_due(session, list((await session.scalars(stmt)).all()))
        notices, drawn = await _draw_cards(session, settings, notices, now)
        by_person: dict[tuple[str, str], list[Notice]] = defaultdict(list)
        for notice in notices:
            by_person[(notice.channel, notice.recipient)].append(notice)
        for (channel, recipient), group in by_person.items():
            if len(recipient) > RECIPIENT_MAX:  # every rule splits its recipients to fit: a bug, never a poison
                log.error("notices %s: recipient %r is longer than the outbox holds; not sent",
                          [n.id for n in group], recipient)
                for notice in group:
                    notice.status = "dead"
                continue
            for notice in [n for n in group if n.kind == "card"]:
                card = notice.card if notice.card is not None else drawn[notice.id]
                rows = enqueue(session, channel=channel, recipient=recipient, reply=TemplateCard(card),
                               now=now, escalation_id=notice.escalation_id, dedup_key=f"notice:{notice.id}")
                await session.flush()
                _mark(notice, rows[0].id, now)
                sent += 1
            texts = [n for n in group if n.kind == "text"]
            if not texts:
                continue
            rows = enqueue(session, channel=channel, recipient=recipient,
                           reply=Text(_digest([n.text or "" for n in texts], settings.rules.digest_max_lines)),
                           now=now, text_max_bytes=settings.outbox.text_max_bytes,
                           escalation_id=texts[0].escalation_id if len(texts) == 1 else None,
                           dedup_key=f"notice:{texts[0].id}")
            await session.flush()
            for notice in texts:
                _mark(notice, rows[0].id, now)
            sent += len(texts)
    return sent


async def _still_due(session: AsyncSession, notices: list[Notice]) -> list[Notice]:
    """A notice held for working hours whose subject was fixed meanwhile is withdrawn, not sent: the lead was
    assigned (R1), the stalled deal moved or closed (R4), the silent deal was revived (R5). (R3 withdraws
    its own nudges in its sweep.)"""
    if not notices:
        return notices
    escalations = {e.id: e for e in (await session.scalars(
        select(Escalation).where(Escalation.id.in_({n.escalation_id for n in notices}),
                                 Escalation.rule.in_(("R1", "R4", "R5")))
    )).all()}
    lead_ids = {e.subject_id for e in escalations.values() if e.rule == "R1"}
    opp_ids = {e.subject_id for e in escalations.values() if e.rule in ("R4", "R5")}
    assigned = set((await session.scalars(
        select(Lead.id).where(Lead.id.in_(lead_ids), Lead.assigned_at.is_not(None))
    )).all()) if lead_ids else set()
    opps = {o.id: o for o in (await session.scalars(
        select(Opportunity).where(Opportunity.id.in_(opp_ids))
    )).all()} if opp_ids else {}

    def fixed(esc: Escalation) -> bool:
        if esc.rule == "R1":
            return esc.subject_id in assigned
        opp = opps.get(esc.subject_id)
        if opp is None or opp.status not in ("open", "silent"):
            return True
        if esc.rule == "R4":
            return opp.stage_entered_at > esc.created_at
        return opp.last_progress_at > esc.created_at  # R5: any activity since revived it

    keep: list[Notice] = []
    for notice in notices:
        esc = escalations.get(notice.escalation_id)
        if esc is not None and fixed(esc):
            notice.status = "withdrawn"
        else:
            keep.append(notice)
    return keep


async def _draw_cards(session: AsyncSession, settings: Settings, notices: list[Notice],
                      now: datetime) -> tuple[list[Notice], dict[int, dict[str, Any]]]:
    """Cards whose rule draws them at send time (R4: the deal as it is now) are drawn here, in bulk per rule
    (notice id -> card; the outbox row keeps what was sent); a card whose subject is gone is withdrawn."""
    from jobs.sweeps.stalls import render_cards  # the rule's module imports this one (calendar_of)

    drawers = {"R4": render_cards}
    blank = [n for n in notices if n.kind == "card" and n.card is None]
    if not blank:
        return notices, {}
    escalations = {e.id: e for e in (await session.scalars(
        select(Escalation).where(Escalation.id.in_({n.escalation_id for n in blank})))).all()}
    cards: dict[int, dict[str, Any] | None] = {}
    for rule, draw in drawers.items():
        mine = [e for e in escalations.values() if e.rule == rule]
        if mine:
            cards.update(await draw(session, settings, mine, now))
    keep: list[Notice] = []
    drawn: dict[int, dict[str, Any]] = {}
    for notice in notices:
        if notice.kind == "card" and notice.card is None:
            card = cards.get(notice.escalation_id)
            if card is None:
                notice.status = "withdrawn"
                continue
            drawn[notice.id] = card
        keep.append(notice)
    return keep, drawn


def _mark(notice: Notice, outbox_id: int, now: datetime) -> None:
    notice.status, notice.outbox_id, notice.sent_at = "sent", outbox_id, now


def _digest(lines: list[str], max_lines: int) -> str:
    """One text, or a numbered digest of several (at most `max_lines`, the rest counted)."""
    if len(lines) == 1:
        return lines[0]
    shown = lines[:max_lines]
    body = [DIGEST_TITLE.format(n=len(lines))] + [f"{i}. {line}" for i, line in enumerate(shown, 1)]
    if len(lines) > max_lines:
        body.append(DIGEST_MORE.format(n=len(lines) - max_lines))
    return "\n".join(body)
