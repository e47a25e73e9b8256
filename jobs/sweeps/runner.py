"""All rule sweeps in one scheduled job: each sweep, then the notices they made (sent at once inside
working hours, so nudges due together for one person go out as one digest)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.deps import Deps
from jobs.notices import send_due_notices
from jobs.sweeps import coaching, conflicts, depth, golden, leads, receivables, scores, silent, stale, stalls, standup

log = logging.getLogger(__name__)

SweepFn = Callable[[Deps, datetime], Awaitable[int]]


def sweeps() -> dict[str, SweepFn]:
    """Rule sweeps by job name (`salesbot jobs run NAME`), in the order the `sweeps` job runs them."""
    return {"r1-leads": leads.run,
            "r4-stalls": stalls.run_stalls, "r5-silent": silent.run,
            # R3 after R5: an opportunity just moved to the silent pool is not nudged as stale too.
            "r3-stale": stale.run, "r17-conflicts": conflicts.run,
            # R16: each does nothing outside its window (also on their own Monday cron, jobs/scheduler.py).
            "r16-standup-prompt": standup.run_prompt, "r16-standup-table": standup.run_table,
            # R2 daily: once per period (jobs/sweeps/periodic.py); R7 once per contract.
            "r2-golden": golden.run, "r7-receivables": receivables.run}


def weekly() -> dict[str, SweepFn]:
    """R12/R13: a week's metrics over every open opportunity / customer — an analytic pass (about a minute
    on 1,000,000 opportunities), so each runs on its own weekly cron (jobs/scheduler.py), never inside the
    every-minute `sweeps` job, whose rules it would delay."""
    return {"r12-coaching": coaching.run, "r13-depth": depth.run}


def daily() -> dict[str, SweepFn]:
    """R9: the process health scores (all reps, set-based: about a second for 10,000 reps) once a day."""
    return {"r9-scores": scores.run}


async def run_notices(deps: Deps, now: datetime) -> int:
    """Send the notices due at `now` (only inside working hours, R18)."""
    count = await send_due_notices(deps.db, deps.settings, now)
    if count:
        deps.wake_sender()
    return count


async def run_all(deps: Deps, now: datetime) -> int:
    """Every sweep, then the notices; one sweep failing does not stop the others (it is logged and counted,
    and its subjects are found again on the next run)."""
    total = 0
    for name, sweep in sweeps().items():
        try:
            total += await sweep(deps, now)
        except Exception:
            deps.metrics.inc("salesbot_sweep_errors_total", sweep=name)
            log.exception("sweep %s failed", name)
    await run_notices(deps, now)
    return total
