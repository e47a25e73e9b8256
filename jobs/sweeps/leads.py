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
from store.repos.escalations import EscalationRepo, Firing

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
            ops = [u for u in (await s.scalars(select(User.wecom_userid).where(
                User.wecom_userid.in_(settings.org.sales_ops), User.active.is_(True)))).all() if u]
            managers: dict[int | None, list[str]] = {}  # per region, looked up once a batch
            firings: list[Firing] = []
            texts: dict[int, str] = {}
            for lead in leads:
                if lead.region_id not in managers:
                    managers[lead.region_id] = await userids(s, [await region_manager(s, lead.region_id)])
                recipients = list(dict.fromkeys([*ops, *managers[lead.region_id]]))
                firings.append(Firing(lead.id, "once", recipients, {"created_at": lead.created_at.isoformat()}))
                hours = int((now - lead.created_at).total_seconds() // 3600)
                texts[lead.id] = TEXT.format(title=lead.title, hours=hours,
                                             created=lead.created_at.astimezone(SHANGHAI).strftime("%m-%d %H:%M"))
            repo = EscalationRepo(s)
            new = await repo.fire_many(RULE, "lead", firings, now)
            await repo.notify_many(
                [{"escalation_id": new[f.subject_id], "recipient": r, "text": texts[f.subject_id]}
                 for f in firings if f.subject_id in new for r in f.recipients],
                now=now, calendar=calendar,
            )
            fired += len(new)
        if len(leads) < BATCH:
            return fired
