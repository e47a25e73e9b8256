"""Opportunities, their key actions (R6) and stage moves, and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditLog, KeyAction, Opportunity, StageMove

OPEN_STATUSES = ("open", "silent")


class PipelineRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, opportunity_id: int) -> Opportunity | None:
        return await self._s.get(Opportunity, opportunity_id)

    async def open_for_customer(self, customer_id: int) -> list[Opportunity]:
        """The customer's open (or silent) opportunities, most recently progressed first."""
        rows = await self._s.scalars(
            select(Opportunity)
            .where(Opportunity.customer_id == customer_id, Opportunity.status.in_(OPEN_STATUSES))
            .order_by(Opportunity.last_progress_at.desc(), Opportunity.id.desc())
        )
        return list(rows.all())

    async def open_for_owner(self, owner_id: int, limit: int = 50) -> list[Opportunity]:
        rows = await self._s.scalars(
            select(Opportunity)
            .where(Opportunity.owner_id == owner_id, Opportunity.status.in_(OPEN_STATUSES))
            .order_by(Opportunity.stage_entered_at, Opportunity.id)
            .limit(limit)
        )
        return list(rows.all())

    async def key_actions(self, opportunity_ids: Sequence[int]) -> dict[int, dict[str, KeyAction]]:
        """opportunity id -> key action name -> row."""
        result: dict[int, dict[str, KeyAction]] = {i: {} for i in opportunity_ids}
        if not opportunity_ids:
            return result
        rows = await self._s.scalars(select(KeyAction).where(KeyAction.opportunity_id.in_(list(opportunity_ids))))
        for row in rows.all():
            result[row.opportunity_id][row.name] = row
        return result

    async def key_action(self, opportunity_id: int, name: str, *, stage: str | None, now: datetime) -> KeyAction:
        """The named key action of an opportunity, created on first mention (unique per opportunity + name)."""
        row = (
            await self._s.execute(
                select(KeyAction).where(KeyAction.opportunity_id == opportunity_id, KeyAction.name == name)
            )
        ).scalar_one_or_none()
        if row is None:
            row = KeyAction(opportunity_id=opportunity_id, name=name, stage=stage, created_at=now)
            self._s.add(row)
            await self._s.flush()
        return row

    async def move(self, opp: Opportunity, to_stage: str, *, actor_id: int | None, now: datetime, forced: bool,
                   reason: str | None, source_ref: str | None) -> StageMove:
        """R6: change the stage; stage_entered_at and last_progress_at restart; a silent deal revives (R5)."""
        move = StageMove(opportunity_id=opp.id, from_stage=opp.stage, to_stage=to_stage, at=now, actor_id=actor_id,
                         forced=forced, reason=reason, source_ref=source_ref)
        self._s.add(move)
        opp.stage, opp.stage_entered_at, opp.last_progress_at, opp.updated_at = to_stage, now, now, now
        if opp.status == "silent":
            opp.status = "open"
        await self._s.flush()
        return move

    async def audit(self, *, at: datetime, actor_id: int | None, action: str, subject_type: str, subject_id: int,
                    detail: dict[str, Any]) -> AuditLog:
        row = AuditLog(at=at, actor_id=actor_id, action=action, subject_type=subject_type, subject_id=subject_id,
                       detail=detail)
        self._s.add(row)
        await self._s.flush()
        return row
