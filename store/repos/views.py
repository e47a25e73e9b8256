"""The manager views' reads (R20): aggregates over a set of owners, grouped in SQL (GROUP BY), never a Python
loop over opportunity rows. Money sums come back as Decimal rounded to the cent."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.rules.metrics import LeadTimes
from bot.rules.signed import signed_between_sql
from store.models import Contract, Lead, Opportunity, User

CENT = Decimal("0.01")
PIPELINE = ("open", "silent")  # the funnel: deals still in play (silent ones are counted apart)


@dataclass(frozen=True)
class StageCell:
    """Opportunities of one owner in one stage."""

    owner_id: int
    team_id: int | None
    stage: str
    status: str
    count: int
    amount: Decimal


@dataclass(frozen=True)
class Signed:
    """R10 new signings of one owner in a period."""

    owner_id: int
    count: int
    amount: Decimal


def _money(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


class ViewRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def funnel(self, owner_ids: Collection[int] | None) -> list[StageCell]:
        """Open and silent opportunities per owner and stage (None: every owner)."""
        stmt = (
            select(Opportunity.owner_id, User.team_id, Opportunity.stage, Opportunity.status, func.count(),
                   func.coalesce(func.sum(Opportunity.amount), 0))
            .join(User, User.id == Opportunity.owner_id)
            .where(Opportunity.status.in_(PIPELINE))
            .group_by(Opportunity.owner_id, User.team_id, Opportunity.stage, Opportunity.status)
        )
        if owner_ids is not None:
            stmt = stmt.where(Opportunity.owner_id.in_(list(owner_ids)))
        return [StageCell(owner, team, stage, status, int(n), _money(total))
                for owner, team, stage, status, n, total in (await self._s.execute(stmt)).all()]

    async def signed(self, owner_ids: Collection[int] | None, start: datetime, end: datetime) -> list[Signed]:
        """R10: contracts counting as signed in [start, end), per owner."""
        stmt = (
            select(Contract.owner_id, func.count(), func.coalesce(func.sum(Contract.amount), 0))
            .where(signed_between_sql(start, end))
            .group_by(Contract.owner_id)
        )
        if owner_ids is not None:
            stmt = stmt.where(Contract.owner_id.in_(list(owner_ids)))
        return [Signed(owner, int(n), _money(total)) for owner, n, total in (await self._s.execute(stmt)).all()]

    async def leads(self, start: datetime, end: datetime, *, assignees: Collection[int] | None,
                    regions: Collection[int] | None) -> list[tuple[LeadTimes, int | None, int | None]]:
        """R2: leads created in [start, end) assigned to one of `assignees` or in one of `regions` (None for
        both: every lead), with their assignee and the assignee's team."""
        stmt = (
            select(Lead.created_at, Lead.assigned_at, Lead.first_contact_at, Lead.assignee_id, User.team_id)
            .outerjoin(User, User.id == Lead.assignee_id)
            .where(Lead.created_at >= start, Lead.created_at < end)  # ix_leads_created
        )
        if assignees is not None or regions is not None:
            stmt = stmt.where(Lead.assignee_id.in_(list(assignees or ())) | Lead.region_id.in_(list(regions or ())))
        return [(LeadTimes(created, assigned, contact), assignee, team)
                for created, assigned, contact, assignee, team in (await self._s.execute(stmt)).all()]
