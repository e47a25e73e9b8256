"""Daily housekeeping: each rep keeps only their newest rebate change row (R8: the version; the rest are history
nobody reads). Runs with the daily scores (jobs/scheduler.py)."""

from __future__ import annotations

from datetime import datetime

from bot.deps import Deps
from store.repos.contracts import ContractRepo


async def run(deps: Deps, now: datetime) -> int:
    async with deps.db.transaction() as s:
        return await ContractRepo(s).prune_changes()
