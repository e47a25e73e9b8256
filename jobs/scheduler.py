"""APScheduler wiring: a few periodic jobs that take plain names, never live objects or one job per item.

misfire_grace_time=None + coalesce=True: after downtime a missed run happens once, late, instead of
being skipped (APScheduler's default grace is 1 s); max_instances=1: a slow run is never overlapped.
"""

from __future__ import annotations

import logging
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.clock import SHANGHAI
from bot.deps import Deps
from jobs.registry import registry

log = logging.getLogger(__name__)


async def run_job(deps: Deps, name: str) -> int:
    """Run one registered job at the clock's now, counting the outcome in the metrics.

    The run is a tracked task of the app: on shutdown it is awaited (bounded) before the database
    closes, instead of being cut off under a closing engine."""
    return int(await deps.spawn(_run_job(deps, name), name=f"job-{name}"))


async def _run_job(deps: Deps, name: str) -> int:
    fn = registry()[name]
    try:
        count = await fn(deps, deps.clock.now())
    except Exception:
        deps.metrics.inc("salesbot_job_runs_total", job=name, outcome="error")
        log.exception("job %s failed", name)
        return 0
    deps.metrics.inc("salesbot_job_runs_total", job=name, outcome="ok")
    return count


JOB_OPTIONS: dict[str, Any] = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}


def _weekly(iso_weekday: int, at: str) -> dict[str, Any]:
    """A cron trigger once a week (ISO weekday 1 = Monday) at HH:MM, Asia/Shanghai."""
    hour, minute = (int(x) for x in at.split(":"))
    return {"trigger": "cron", "day_of_week": ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[iso_weekday - 1],
            "hour": hour, "minute": minute}


def build_scheduler(deps: Deps) -> AsyncIOScheduler:
    """The periodic jobs; later issues add their sweeps here (one job per sweep, never per item).

    Inbox recovery is not here: the app runs it in its own loop (bot/app.py), scheduler or not."""
    s = deps.settings
    scheduler = AsyncIOScheduler(timezone=SHANGHAI, job_defaults=JOB_OPTIONS)
    hour, minute = (int(x) for x in s.org.sync_at.split(":"))
    jobs: list[tuple[str, dict[str, Any]]] = [
        ("outbox", {"trigger": "interval", "seconds": s.scheduler.outbox_interval_s}),
        ("sync-org", {"trigger": "cron", "hour": hour, "minute": minute}),
        ("media-fetch", {"trigger": "interval", "seconds": s.media.fetch_interval_s}),
        ("sweeps", {"trigger": "interval", "seconds": s.rules.sweep_interval_s}),
        # R16: the stand-up prompt and table on the dot (they also run inside `sweeps`, which catches up
        # after downtime; their notices go out with the next `sweeps` run).
        *((name, _weekly(s.rules.standup_weekday, at)) for name, at in (
            ("r16-standup-prompt", s.rules.standup_prompt_at), ("r16-standup-table", s.rules.standup_table_at))),
        # R12/R13: the week's measures, Monday early, each its own job (jobs/sweeps/runner.py weekly()).
        *((name, _weekly(1, s.metrics.weekly_at)) for name in ("r12-coaching", "r13-depth")),
        # R9: scores every day at the same hour (last week's final, this week's so far); housekeeping with it.
        *((name, {"trigger": "cron", "hour": int(s.metrics.weekly_at[:2]), "minute": int(s.metrics.weekly_at[3:5])})
          for name in ("r9-scores", "prune")),
    ]
    for name, trigger in jobs:
        scheduler.add_job(run_job, args=[deps, name], id=name, replace_existing=True, **trigger, **JOB_OPTIONS)
    return scheduler
