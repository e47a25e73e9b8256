"""R13 contact depth: a customer whose contact depth index (bot/rules/metrics.py) for the week just ended is
below `[metrics] depth_threshold` → that industry's talk-track pack (`[metrics] talk_tracks`) to its owner,
once per customer per week.

The customers measured are those in play: owned, existing, and with an open opportunity that existed
during the week. The week's wechat messages are activities of kind "wechat", document downloads activities
of kind "doc", note characters the sum of every activity's note_chars; the baseline is
`[metrics] depth_baselines` for the customer's industry (else "default"). It runs inside the every-minute
`sweeps` job and works once per week (periodic.py's mark) from Monday 00:00 on; the messages wait for
working hours and reach an owner with several as one digest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, exists, func, select

from bot.deps import Deps
from bot.rules.metrics import Contact, depth_index, week_bounds
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, not_fired, userids
from jobs.sweeps.periodic import mark_period_done, week_to_run
from store.models import Activity, Customer, Opportunity
from store.repos.escalations import EscalationRepo

RULE = "R13"
DEFAULT = "default"
TEXT = ("📉 客户「{customer}」上周接触深度指数 {index:.2f}（低于 {threshold:g}）：微信 {wechat} 条、纪要 {chars} 字、"
        "文档 {docs} 份。推荐这套话术：\n{pack}")


async def run(deps: Deps, now: datetime) -> int:
    """R13: talk-track packs for the customers below the threshold in the week just ended."""
    settings = deps.settings
    m = settings.metrics
    due = await week_to_run(deps.db, RULE, now)
    if due is None:
        return 0
    week, period = due
    start, end = week_bounds(week)
    calendar = calendar_of(settings)
    in_play = exists().where(Opportunity.customer_id == Customer.id, Opportunity.status == "open",
                             Opportunity.created_at < end)
    wechat = func.sum(case((Activity.kind == "wechat", 1), else_=0))
    docs = func.sum(case((Activity.kind == "doc", 1), else_=0))
    chars = func.coalesce(func.sum(Activity.note_chars), 0)
    fired, after = 0, 0
    while True:
        async with deps.db.transaction() as s:
            customers = (await s.scalars(
                select(Customer)
                .where(Customer.id > after, Customer.owner_id.is_not(None), Customer.created_at < end, in_play,
                       not_fired(RULE, "customer", Customer.id, period))
                .order_by(Customer.id)
                .limit(BATCH)
            )).all()
            contact: dict[int, Contact] = {}
            if customers:
                after = customers[-1].id
                rows = await s.execute(
                    select(Activity.customer_id, wechat, chars, docs)
                    .where(Activity.customer_id.in_([c.id for c in customers]),
                           Activity.occurred_at >= start, Activity.occurred_at < end)
                    .group_by(Activity.customer_id))
                contact = {cid: Contact(int(w or 0), int(n or 0), int(d or 0)) for cid, w, n, d in rows.all()
                           if cid is not None}
            repo = EscalationRepo(s)
            for customer in customers:
                industry = customer.industry or ""
                baseline = m.depth_baselines.get(industry) or m.depth_baselines.get(DEFAULT)
                pack = m.talk_tracks.get(industry) or m.talk_tracks.get(DEFAULT)
                if baseline is None or pack is None:
                    continue
                week_contact = contact.get(customer.id, Contact())
                index = depth_index(week_contact, Contact.of(baseline), m.depth_weights)
                if index >= m.depth_threshold:
                    continue
                owner = await userids(s, [customer.owner_id])
                if not owner:
                    continue
                esc = await repo.fire(RULE, "customer", customer.id, period, now, recipients=owner,
                                      data={"index": round(index, 4), "industry": industry})
                if esc is None:
                    continue
                text = TEXT.format(customer=customer.name, index=index, threshold=m.depth_threshold,
                                   wechat=int(week_contact.wechat), chars=int(week_contact.note_chars),
                                   docs=int(week_contact.docs), pack=pack)
                repo.notify(esc, owner[0], now=now, calendar=calendar, text=text)
                fired += 1
        if len(customers) < BATCH:
            break
    async with deps.db.transaction() as s:
        await mark_period_done(s, RULE, period, now)
    return fired
