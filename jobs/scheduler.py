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
    ]
    for name, trigger in jobs:
        scheduler.add_job(run_job, args=[deps, name], id=name, replace_existing=True, **trigger, **JOB_OPTIONS)
    return scheduler
