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

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import SHANGHAI
from bot.deps import Deps
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, iso, manager_of, not_fired, userids
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
    fired = 0
    while True:
        async with deps.db.transaction() as s:
            rows = (await s.execute(
                select(Opportunity, Customer.name)
                .join(Customer, Customer.id == Opportunity.customer_id)
                .where(Opportunity.status == "open", Opportunity.last_progress_at < cutoff,  # ix_opps_status_progress
                       not_fired(RULE, "opportunity", Opportunity.id, period))
                .order_by(Opportunity.last_progress_at, Opportunity.id)
                .limit(BATCH)
            )).all()
            repo = EscalationRepo(s)
            opp_ids = [opp.id for opp, _ in rows]
            earlier = await _nudges_this_spell(s, opp_ids)
            owners = await _owners(s, [opp.owner_id for opp, _ in rows])
            nudges: list[Firing] = []
            texts: dict[int, str] = {}
            for opp, customer in rows:
                owner = [userid] if (userid := owners.get(opp.owner_id, ("", None))[1]) else []
                nudges.append(Firing(opp.id, period, owner, {"last_progress_at": iso(opp.last_progress_at),
                                                             "nudge": earlier.get(opp.id, 0) + 1}))
                days = int((now - opp.last_progress_at) / timedelta(days=1))
                last = opp.last_progress_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M")
                texts[opp.id] = NUDGE.format(opp=opp.name, customer=customer, days=days, last=last)
            new = await repo.fire_many(RULE, "opportunity", nudges, now)  # one statement for the batch
            await repo.notify_many([{"escalation_id": new[f.subject_id], "recipient": r, "text": texts[f.subject_id]}
                                    for f in nudges if f.subject_id in new for r in f.recipients],
                                   now=now, calendar=calendar)
            fired += len(new)
            managers_of: dict[int, list[str]] = {}
            for opp, customer in rows:
                ignored = earlier.get(opp.id, 0)
                if opp.id not in new or ignored < rules.stale_nudges_before_manager:
                    continue
                if opp.owner_id not in managers_of:
                    managers_of[opp.owner_id] = await userids(s, [await manager_of(s, opp.owner_id)])
                managers = managers_of[opp.owner_id]
                told = await repo.fire(RULE_MANAGER, "opportunity", opp.id, iso(opp.last_progress_at), now,
                                       recipients=managers, data={"ignored_nudges": ignored})
                if told is None:
                    continue
                days = int((now - opp.last_progress_at) / timedelta(days=1))
                text = TO_MANAGER.format(opp=opp.name, customer=customer, days=days, nudges=ignored,
                                         owner=owners.get(opp.owner_id, ("—", None))[0])
                for recipient in managers:
                    repo.notify(told, recipient, now=now, calendar=calendar, text=text)
        if len(rows) < BATCH:
            return fired


async def _nudges_this_spell(session: AsyncSession, opp_ids: list[int]) -> dict[int, int]:
    """R3 nudges since each opportunity's last progress (its ignored nudges), for a batch in one query."""
    if not opp_ids:
        return {}
    rows = (await session.execute(
        select(Escalation.subject_id, func.count())
        .join(Opportunity, Opportunity.id == Escalation.subject_id)
        .where(Escalation.rule == RULE, Escalation.subject_type == "opportunity", Escalation.subject_id.in_(opp_ids),
               Escalation.created_at > Opportunity.last_progress_at)
        .group_by(Escalation.subject_id)
    )).all()
    return {int(subject_id): int(n) for subject_id, n in rows}


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
