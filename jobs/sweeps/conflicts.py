"""R17 ownership conflict: a customer followed by ≥ `[capture] conflict_min_reps` reps within
`conflict_window_days` (an OwnershipConflict row, written by handlers/common.py after an activity) → the
manager of the customer's owner is told which reps touched it (the reps' managers when it has no owner).

One escalation per (R17, customer, conflict period); notified_at is set in the same transaction, so a conflict
whose rep list grows later in the same period is not alerted again. The rows are claimed FOR UPDATE SKIP
LOCKED on PostgreSQL: a check-in widening a row right now holds it, and the row is taken on the next run.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.deps import Deps
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, manager_of, userids
from store.models import Customer, OwnershipConflict, User
from store.repos.escalations import EscalationRepo

RULE = "R17"
TEXT = ("⚠️ 撞单提醒：客户「{customer}」近 {days} 天有 {n} 位销售在跟进：{reps}（负责人：{owner}）。"
        "请明确归属，避免重复跟进。")
NO_OWNER = "未分配"


async def run(deps: Deps, now: datetime) -> int:
    """R17: alert the managers of conflicts not yet notified; returns conflicts alerted."""
    settings = deps.settings
    calendar = calendar_of(settings)
    fired = 0
    while True:
        async with deps.db.transaction() as s:
            stmt = (select(OwnershipConflict).where(OwnershipConflict.notified_at.is_(None))  # ix_conflicts_notified
                    .order_by(OwnershipConflict.id).limit(BATCH))
            if deps.db.engine.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            conflicts = (await s.scalars(stmt)).all()
            repo = EscalationRepo(s)
            for conflict in conflicts:
                conflict.notified_at = now
                customer = await s.get(Customer, conflict.customer_id)
                owner_id = customer.owner_id if customer is not None else conflict.owner_id
                rep_ids = [int(r) for r in conflict.rep_ids]
                owner_manager = await manager_of(s, owner_id) if owner_id is not None else None
                managers = [owner_manager] if owner_manager is not None else [await manager_of(s, r) for r in rep_ids]
                recipients = await userids(s, managers)
                esc = await repo.fire(RULE, "customer", conflict.customer_id, conflict.period, now,
                                      recipients=recipients, data={"conflict_id": conflict.id, "rep_ids": rep_ids})
                if esc is None:
                    continue
                fired += 1
                names = await _names(s, [*rep_ids, *([owner_id] if owner_id is not None else [])])
                text = TEXT.format(customer=customer.name if customer is not None else conflict.customer_id,
                                   days=settings.capture.conflict_window_days, n=len(rep_ids),
                                   reps="、".join(names.get(r, str(r)) for r in rep_ids),
                                   owner=names.get(owner_id, NO_OWNER) if owner_id is not None else NO_OWNER)
                for recipient in recipients:
                    repo.notify(esc, recipient, now=now, calendar=calendar, text=text)
        if len(conflicts) < BATCH:
            return fired


async def _names(session: AsyncSession, user_ids: list[int]) -> dict[int, str]:
    rows = (await session.execute(select(User.id, User.name).where(User.id.in_(user_ids)))).all()
    return {uid: name for uid, name in rows}
