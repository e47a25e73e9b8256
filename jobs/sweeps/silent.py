"""R5 silent churn pool: no progress for more than `silent_factor` × the stage limit → status silent, owner and
manager told, once per (R5, opportunity, last progress). New activity revives it (handlers/common.py
`after_activity`). The status flip itself takes a deal out of the next run's query (index (status,
last_progress_at)), so the work follows what is due."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.deps import Deps
from bot.rules.calendar import WorkCalendar
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, after_key, write_batches
from jobs.sweeps.stalls import SUBJECT, Deal, People, StageGroup, deals_query, stage_groups
from store.models import Opportunity
from store.repos.escalations import EscalationRepo, Firing

R5 = "R5"
SILENT_OWNER = ("🔕 你的商机「{opp}」（{customer}）已 {days} 天没有进展，已移入静默流失池（这类商机大多最终流失）。"
                "记录一次拜访或跟进即可恢复。")
SILENT_MANAGER = "🔕 {owner} 的商机「{opp}」（{customer}，{stage}）已 {days} 天没有进展，已移入静默流失池。"


class SilentDeal(Deal, Protocol):
    @property
    def last_progress_at(self) -> datetime: ...


async def run(deps: Deps, now: datetime) -> int:
    """R5: open opportunities without progress for silent_factor × their stage limit become silent; owner and
    manager are told once per (opportunity, last progress). The status flip takes them out of the query."""
    settings = deps.settings
    calendar = calendar_of(settings)
    fired = 0
    for group in stage_groups(settings.rules):
        cutoff = now - timedelta(hours=group.hours * settings.rules.silent_factor)

        async def pages(group: StageGroup = group, cutoff: datetime = cutoff) -> AsyncIterator[list[int]]:
            key: tuple[datetime, int] | None = None
            while True:
                async with deps.db.sessions() as s:
                    page = (await s.execute(
                        select(Opportunity.last_progress_at, Opportunity.id)
                        .where(Opportunity.status == "open", group.condition(),
                               Opportunity.last_progress_at <= cutoff,
                               after_key(key, Opportunity.last_progress_at, Opportunity.id))
                        .order_by(Opportunity.last_progress_at, Opportunity.id)
                        .limit(BATCH)
                    )).all()
                if page:
                    yield [opp_id for _, opp_id in page]
                    key = (page[-1][0], page[-1][1])
                if len(page) < BATCH:
                    return

        async def silence(s: AsyncSession, ids: list[int], cutoff: datetime = cutoff) -> int:
            # Re-checked in the UPDATE: a check-in committed since the page was read keeps its deal open.
            silenced = (await s.scalars(
                update(Opportunity)
                .where(Opportunity.id.in_(ids), Opportunity.status == "open", Opportunity.last_progress_at <= cutoff)
                .values(status="silent", updated_at=now)
                .returning(Opportunity.id)
                .execution_options(synchronize_session=False)
            )).all()
            if not silenced:
                return 0
            deals = (await s.execute(deals_query().add_columns(Opportunity.last_progress_at)
                                     .where(Opportunity.id.in_(silenced)))).all()
            return await _tell_silent(s, settings, now, deals, calendar)

        fired += await write_batches(deps.db, pages(), silence)
    return fired


async def _tell_silent(s: AsyncSession, settings: Settings, now: datetime, deals: Sequence[SilentDeal],
                       calendar: WorkCalendar) -> int:
    people = await People.load(s, settings, deals)
    firings: list[Firing] = []
    texts: dict[int, list[tuple[str, str]]] = {}
    for deal in deals:
        owner, manager = people.silent(deal.owner_id)
        days = int((now - deal.last_progress_at).total_seconds() // 86400)
        texts[deal.id] = [(u, SILENT_OWNER.format(opp=deal.name, customer=deal.customer, days=days)) for u in owner] + [
            (u, SILENT_MANAGER.format(owner=deal.owner, opp=deal.name, customer=deal.customer, stage=deal.stage,
                                      days=days)) for u in manager]
        period = deal.last_progress_at.astimezone(UTC).isoformat(timespec="seconds")
        firings.append(Firing(deal.id, period, owner + manager,
                              {"stage": deal.stage, "last_progress_at": deal.last_progress_at.isoformat()}))
    repo = EscalationRepo(s)
    new = await repo.fire_many(R5, SUBJECT, firings, now)
    await repo.notify_many(
        [{"escalation_id": esc_id, "recipient": who, "text": text}
         for subject_id, esc_id in new.items() for who, text in texts[subject_id]],
        now=now, calendar=calendar,
    )
    return len(new)
