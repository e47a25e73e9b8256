"""R2 golden 4 hours: each day from `[metrics] golden_review_at` (Asia/Shanghai), yesterday's new leads per
region: responded / new (bot/rules/metrics.py). Below `golden_rate` → a 电话复盘 (phone review) task card to
the region's manager listing the leads that missed; once per (R2, region, day). Leads without a region, or a
region without a manager, go to sales ops.

It runs inside the every-minute `sweeps` job and works once per day (periodic.py's mark): a server down at the
review time reviews the latest due day when it is back.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from bot.clock import SHANGHAI
from bot.deps import Deps
from bot.rules.metrics import LeadTimes, day_bounds, golden_rate, miss_reason
from jobs.notices import calendar_of
from jobs.sweeps.base import region_manager, userids
from jobs.sweeps.periodic import mark_period_done, period_done, recipient_groups, send_card, task_id, work_card
from store.models import Lead, OrgUnit, User
from store.repos.escalations import EscalationRepo

RULE = "R2"
NO_REGION = "未分区域"
TITLE = "电话复盘：{region} {day} {hours}小时响应率 {rate}"
DESC = "{responded}/{total} 条线索按时响应，目标 {target}"
TEXT = "请逐条电话复盘这 {n} 条线索：为何没在 {hours} 小时内分配并首次联系，今天补上联系。{more}"
MORE = "另有 {n} 条见系统。"
REASONS = {"unassigned": "未分配", "no_contact": "未联系", "late": "超时{hours}h"}


def review_day(now: datetime, review_at: str) -> date:
    """The day whose review is due at `now`: yesterday from the review time on, the day before until then."""
    local = now.astimezone(SHANGHAI)
    return local.date() - timedelta(days=1 if local.time() >= time.fromisoformat(review_at) else 2)


async def run(deps: Deps, now: datetime) -> int:
    """R2: the phone-review cards for the latest day whose review is due (nothing once it was done)."""
    m = deps.settings.metrics
    day = review_day(now, m.golden_review_at)
    period = day.isoformat()
    start, end = day_bounds(day)
    calendar = calendar_of(deps.settings)
    fired = 0
    async with deps.db.transaction() as s:
        if await period_done(s, RULE, period):
            return 0
        leads = (await s.scalars(
            select(Lead).where(Lead.created_at >= start, Lead.created_at < end).order_by(Lead.created_at, Lead.id)
        )).all()
        by_region: defaultdict[int | None, list[Lead]] = defaultdict(list)
        for lead in leads:
            by_region[lead.region_id].append(lead)
        ops = [u for u in (await s.scalars(select(User.wecom_userid).where(
            User.wecom_userid.in_(deps.settings.org.sales_ops), User.active.is_(True)))).all() if u]
        repo = EscalationRepo(s)
        for region_id, group in sorted(by_region.items(), key=lambda kv: kv[0] or 0):
            times = {lead.id: LeadTimes(lead.created_at, lead.assigned_at, lead.first_contact_at) for lead in group}
            rate = golden_rate(times.values(), m.golden_hours)
            if not rate.below(m.golden_rate):
                continue
            recipients = await userids(s, [await region_manager(s, region_id)]) or ops
            if not recipients:
                continue
            missed = [(lead, reason) for lead in group
                      if (reason := miss_reason(times[lead.id], m.golden_hours)) is not None]
            task = task_id(RULE, region_id or 0, period)
            groups = recipient_groups(recipients)
            esc = await repo.fire(RULE, "region", region_id or 0, period, now, recipients=recipients, task_id=task,
                                  data={"responded": rate.hits, "total": rate.total, "card_to": groups[0].split("|"),
                                        "missed": [lead.id for lead, _ in missed]})
            if esc is None:
                continue
            unit = await s.get(OrgUnit, region_id) if region_id is not None else None
            title = TITLE.format(region=unit.name if unit is not None else NO_REGION, day=day.strftime("%m-%d"),
                                 hours=f"{m.golden_hours:g}", rate=f"{(rate.rate or 0):.0%}")
            card = work_card(
                rule=RULE, task=task, title=title,
                desc=DESC.format(responded=rate.hits, total=rate.total, target=f"{m.golden_rate:.0%}"),
                rows=[_row(lead, reason) for lead, reason in missed],
                text=TEXT.format(n=len(missed), hours=f"{m.golden_hours:g}",
                                 more=MORE.format(n=len(missed) - 6) if len(missed) > 6 else ""),
            )
            send_card(repo, esc, groups, card=card, copy=title, now=now, calendar=calendar)
            fired += 1
        await mark_period_done(s, RULE, period, now)
    return fired


def _row(lead: Lead, reason: str) -> tuple[str, str]:
    """A missed lead on the card: its creation time, its title and why it missed."""
    late = (lead.first_contact_at - lead.created_at).total_seconds() / 3600 if lead.first_contact_at else 0.0
    why = REASONS[reason].format(hours=f"{late:.1f}")
    return lead.created_at.astimezone(SHANGHAI).strftime("%H:%M"), f"{lead.title}（{why}）"
