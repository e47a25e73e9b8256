"""R1 lead assignment: a lead unassigned for `[rules] lead_assign_hours` alerts sales ops and the region's
manager, once per lead."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import literal, select

from bot.clock import SHANGHAI
from bot.deps import Deps
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, not_fired, region_manager, userids
from store.models import Lead, User
from store.repos.escalations import EscalationRepo

RULE = "R1"
TEXT = "⏰ 线索「{title}」已创建 {hours} 小时仍未分配（{created} 创建），请尽快分配：分配越晚，转化越低。"


async def run(deps: Deps, now: datetime) -> int:
    """R1: alerts for leads created before now − lead_assign_hours and still unassigned."""
    settings = deps.settings
    cutoff = now - timedelta(hours=settings.rules.lead_assign_hours)
    calendar = calendar_of(settings)
    fired = 0
    while True:
        async with deps.db.transaction() as s:
            leads = (await s.scalars(
                select(Lead)
                .where(Lead.assigned_at.is_(None), Lead.status == "open", Lead.created_at <= cutoff,
                       not_fired(RULE, "lead", Lead.id, literal("once")))
                .order_by(Lead.created_at, Lead.id)
                .limit(BATCH)
            )).all()
            repo = EscalationRepo(s)
            ops = [u for u in (await s.scalars(select(User.wecom_userid).where(
                User.wecom_userid.in_(settings.org.sales_ops), User.active.is_(True)))).all() if u]
            for lead in leads:
                recipients = list(dict.fromkeys(
                    [*ops, *await userids(s, [await region_manager(s, lead.region_id)])]))
                esc = await repo.fire(RULE, "lead", lead.id, "once", now, recipients=recipients,
                                      data={"created_at": lead.created_at.isoformat()})
                if esc is None:
                    continue
                hours = int((now - lead.created_at).total_seconds() // 3600)
                text = TEXT.format(title=lead.title, hours=hours,
                                   created=lead.created_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"))
                for recipient in recipients:
                    repo.notify(esc, recipient, now=now, calendar=calendar, text=text)
                fired += 1
        if len(leads) < BATCH:
            return fired
