"""R9 process health scores, daily: first the key actions that are due exist (each open deal's next gate,
R6), then every rep's score for the last complete week and for this week so far (store/repos/scores.py).

A key action is due `[score] sla_hours[name]` (else `default_sla_hours`) after its deal entered the stage
before the gate that needs it: a deal in 触达 owes 首次需求确认 (the gate of 需求诊断) 24 h after first contact.
Rows that exist without a deadline (a rep attached a file first) get the same deadline. Deals imported or
moved by any path are covered, since the rows are made here, set-based, one statement per gate name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, and_, exists, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.deps import Deps
from bot.rules.gates import next_stage
from bot.rules.metrics import last_complete_week, local_day, monday_of
from store.models import KeyAction, Opportunity
from store.repos.scores import compute_week, plus_seconds

RULE = "R9"


async def run(deps: Deps, now: datetime) -> int:
    """R9: due key actions made, then last week's and this week's scores; returns the rows scored."""
    settings = deps.settings
    async with deps.db.transaction() as s:
        await ensure_due_key_actions(s, settings, now)
    async with deps.db.transaction() as s:
        scored = await compute_week(s, last_complete_week(now), now, settings.score)
        await compute_week(s, monday_of(local_day(now)), now, settings.score)
    return scored


async def ensure_due_key_actions(s: AsyncSession, settings: Settings, now: datetime) -> int:
    """Each open deal's next-gate key actions exist with a deadline (stage entry + the action's SLA)."""
    funnel = settings.funnel
    made = 0
    for stage in funnel.stages:
        target = next_stage(funnel.stages, stage)
        for name in funnel.gates.get(target, ()) if target is not None else ():
            hours = settings.score.sla_for(name)
            if hours is None:
                continue
            deadline = plus_seconds(Opportunity.stage_entered_at, literal(int(hours * 3600)))
            in_stage = and_(Opportunity.status == "open", Opportunity.stage == stage)
            missing = ~exists().where(KeyAction.opportunity_id == Opportunity.id, KeyAction.name == name)
            result = await s.execute(
                insert(KeyAction).from_select(
                    ["opportunity_id", "name", "stage", "due_at", "created_at"],
                    select(Opportunity.id, literal(name), literal(target), deadline,
                           literal(now, KeyAction.created_at.type))
                    .where(in_stage, missing),
                )
            )
            made += cast(CursorResult[Any], result).rowcount or 0
            await s.execute(
                update(KeyAction)
                .where(KeyAction.name == name, KeyAction.due_at.is_(None),
                       KeyAction.opportunity_id == Opportunity.id, in_stage)
                .values(due_at=deadline)
                .execution_options(synchronize_session=False)
            )
    return made
