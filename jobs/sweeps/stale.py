"""R3 stale follow-up: an open opportunity with no activity for more than `[rules] stale_hours` nudges its
owner, at most once per working day; after `stale_nudges_before_manager` ignored nudges the manager is told,
once per stale spell.

The nudge's period is the working day it belongs to (R18: one due at night counts for the next working day
and arrives at 09:00). A nudge counts as ignored when no activity followed it: the R3 escalations created
since the opportunity's last_progress_at. Any activity moves last_progress_at (handlers/common.py), which
ends the spell: the count restarts, the manager escalation (period = last_progress_at) may fire again in a
later spell, and a nudge still waiting for working hours is withdrawn rather than sent stale.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import ScalarSelect

from bot.clock import SHANGHAI
from bot.deps import Deps
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, Lines, after_key, iso, not_fired, write_batches
from store.models import Customer, Escalation, Notice, Opportunity, User
from store.repos.escalations import EscalationRepo, Firing

RULE = "R3"
RULE_MANAGER = "R3M"
NUDGE = ("⏰ 商机「{opp}」（{customer}）已 {days} 天没有跟进记录（上次 {last}）。今天跟进一下吧，"
         "拜访、电话或微信后直接告诉我，例如「今日拜访完成 {customer} 1小时 客户认可方案」。")
TO_MANAGER = ("⚠️ 商机「{opp}」（{customer}，负责人 {owner}）已 {days} 天没有跟进，已提醒 {nudges} 次仍未处理，"
              "请关注。")


async def run(deps: Deps, now: datetime) -> int:
    """R3: nudges (and manager escalations) for open opportunities whose last progress is older than
    now − stale_hours and that have no nudge for today's working day yet; returns nudges fired."""
    settings = deps.settings
    rules = settings.rules
    cutoff = now - timedelta(hours=rules.stale_hours)
    calendar = calendar_of(settings)
    period = calendar.working_day_of(now).isoformat()
    await withdraw_progressed(deps)

    async def pages() -> AsyncIterator[Sequence[_Stale]]:
        """Keyset pages of stale deals not nudged this working day (read only: the insert re-checks)."""
        key: tuple[datetime, int] | None = None
        while True:
            async with deps.db.sessions() as s:
                rows = (await s.execute(
                    select(Opportunity.id, Opportunity.name, Opportunity.owner_id, Opportunity.last_progress_at,
                           Customer.name.label("customer"), _nudges_this_spell().label("earlier"))
                    .join(Customer, Customer.id == Opportunity.customer_id)
                    .where(Opportunity.status == "open", Opportunity.last_progress_at < cutoff,
                           not_fired(RULE, "opportunity", Opportunity.id, period),
                           after_key(key, Opportunity.last_progress_at, Opportunity.id))
                    .order_by(Opportunity.last_progress_at, Opportunity.id)
                    .limit(BATCH)
                )).all()
            if rows:
                yield rows
                key = (rows[-1].last_progress_at, rows[-1].id)
            if len(rows) < BATCH:
                return

    async def nudge(s: AsyncSession, rows: Sequence[_Stale]) -> int:
        repo = EscalationRepo(s)
        owners = await _owners(s, [r.owner_id for r in rows])
        nudges: list[Firing] = []
        texts: dict[int, str] = {}
        for r in rows:
            owner = [userid] if (userid := owners.get(r.owner_id, ("", None))[1]) else []
            nudges.append(Firing(r.id, period, owner, {"last_progress_at": iso(r.last_progress_at),
                                                       "nudge": r.earlier + 1}))
            days = int((now - r.last_progress_at) / timedelta(days=1))
            last = r.last_progress_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M")
            texts[r.id] = NUDGE.format(opp=r.name, customer=r.customer, days=days, last=last)
        new = await repo.fire_many(RULE, "opportunity", nudges, now)  # one statement for the batch
        await repo.notify_many([{"escalation_id": new[f.subject_id], "recipient": who, "text": texts[f.subject_id]}
                                for f in nudges if f.subject_id in new for who in f.recipients],
                               now=now, calendar=calendar)
        escalate = [r for r in rows if r.id in new and r.earlier >= rules.stale_nudges_before_manager]
        lines = await Lines.load(s, {r.owner_id for r in escalate})
        firings: list[Firing] = []
        told_text: dict[int, str] = {}
        for r in escalate:
            days = int((now - r.last_progress_at) / timedelta(days=1))
            told_text[r.id] = TO_MANAGER.format(opp=r.name, customer=r.customer, days=days, nudges=r.earlier,
                                                owner=owners.get(r.owner_id, ("—", None))[0])
            firings.append(Firing(r.id, iso(r.last_progress_at), lines.userids([lines.manager.get(r.owner_id)]),
                                  {"ignored_nudges": r.earlier}))
        told = await repo.fire_many(RULE_MANAGER, "opportunity", firings, now)  # once per stale spell
        await repo.notify_many([{"escalation_id": told[f.subject_id], "recipient": who,
                                 "text": told_text[f.subject_id]}
                                for f in firings if f.subject_id in told for who in f.recipients],
                               now=now, calendar=calendar)
        return len(new)

    return await write_batches(deps.db, pages(), nudge)


_Stale = Row[int, str, int, datetime, str, int]  # id, name, owner_id, last_progress_at, customer, earlier


def _nudges_this_spell() -> ScalarSelect[int]:
    """SQL, per candidate: its R3 nudges since its last progress (the ignored ones) — a correlated probe of
    the escalations' unique index (rule, subject_type, subject_id, …) per row, so the cost follows the batch,
    not the history (a batch-wide IN list was planned as a filter over every R3 row)."""
    return (
        select(func.count()).select_from(Escalation)
        .where(Escalation.rule == RULE, Escalation.subject_type == "opportunity",
               Escalation.subject_id == Opportunity.id, Escalation.created_at > Opportunity.last_progress_at)
        .correlate(Opportunity).scalar_subquery()
    )


async def _owners(session: AsyncSession, user_ids: list[int]) -> dict[int, tuple[str, str | None]]:
    """Owner id → (name, WeCom userid when active), for a batch in one query."""
    rows = (await session.execute(
        select(User.id, User.name, User.wecom_userid, User.active).where(User.id.in_(set(user_ids)))
    )).all()
    return {uid: (name, wecom if active and wecom else None) for uid, name, wecom, active in rows}


async def withdraw_progressed(deps: Deps) -> int:
    """R3 notices still waiting for working hours (written at night) whose opportunity progressed or closed
    since: marked withdrawn, never sent. Driven by the few pending notices (ix_notices_status_due)."""
    # Three primary-key/index look-ups instead of one join: right after a sweep wrote thousands of
    # escalations the planner's statistics are stale and a join was seen to take 12 s on 10,000 notices.
    async with deps.db.sessions() as s:  # a read first: no write transaction when there is nothing to do
        pending = (await s.execute(
            select(Notice.id, Notice.escalation_id).where(Notice.status == "pending")  # ix_notices_status_due
        )).all()
        escalations = {
            e_id: (subject_id, created_at)
            for e_id, subject_id, created_at in (await s.execute(
                select(Escalation.id, Escalation.subject_id, Escalation.created_at)
                .where(Escalation.id.in_({e for _, e in pending}), Escalation.rule.in_((RULE, RULE_MANAGER)),
                       Escalation.subject_type == "opportunity")
            )).all()
        } if pending else {}
        opps = {
            o_id: (last, status)
            for o_id, last, status in (await s.execute(
                select(Opportunity.id, Opportunity.last_progress_at, Opportunity.status)
                .where(Opportunity.id.in_({subject for subject, _ in escalations.values()}))
            )).all()
        } if escalations else {}
    ids = [
        n_id for n_id, e_id in pending
        if e_id in escalations and (opp := opps.get(escalations[e_id][0])) is not None
        and (opp[0] > escalations[e_id][1] or opp[1] != "open")
    ]
    if ids:
        async with deps.db.transaction() as s:
            await s.execute(update(Notice).where(Notice.id.in_(ids), Notice.status == "pending")
                            .values(status="withdrawn"))
    return len(ids)
