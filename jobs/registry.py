"""Every scheduled job by name: `run(deps, now) -> count`, so `salesbot jobs run NAME --now` runs any
of them at any moment and the scheduler calls the same functions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.deps import Deps
from jobs.media_fetch import run as run_media_fetch
from jobs.prune import run as run_prune
from jobs.sync_org import WeComDirectory, sync_org

JobFn = Callable[[Deps, datetime], Awaitable[int]]


async def run_outbox(deps: Deps, now: datetime) -> int:
    """Deliver due outbox rows once (the sender loop does this continuously)."""
    assert deps.sender is not None
    return await deps.sender.run_once(now)


async def run_inbox_recovery(deps: Deps, now: datetime) -> int:
    """Process inbox rows left pending by a crash, and failed rows whose retry is due."""
    assert deps.dispatcher is not None
    return await deps.dispatcher.recover(now)


async def run_sync_org(deps: Deps, now: datetime, *, force: bool = False) -> int:
    """Pull the WeCom directory into regions, teams and users; returns how many things changed."""
    assert deps.wecom is not None
    report = await sync_org(deps.db, WeComDirectory(deps.wecom), deps.settings.org, now, force=force)
    return report.total()


def registry() -> dict[str, JobFn]:
    from jobs.sweeps.runner import daily, run_all, run_notices, sweeps, weekly

    jobs: dict[str, JobFn] = {
        "outbox": run_outbox,
        "inbox-recovery": run_inbox_recovery,
        "sync-org": run_sync_org,
        "media-fetch": run_media_fetch,
        "sweeps": run_all,  # every rule sweep, then the notices (R1–R17, R18)
        "notices": run_notices,
        **sweeps(),  # each rule on its own: r1-leads, …
        **weekly(),  # r12-coaching, r13-depth
        **daily(),  # r9-scores
        "prune": run_prune,  # old rebate change rows
    }
    # Jobs that change what views show clear the view cache when they finish (R20); the outbox sender and
    # inbox recovery do not (recovered messages clear it through the dispatcher).
    return {name: fn if name in ("outbox", "inbox-recovery", "prune") else _clears_views(fn)
            for name, fn in jobs.items()}


def _clears_views(fn: JobFn) -> JobFn:
    async def run(deps: Deps, now: datetime) -> int:
        try:
            return await fn(deps, now)
        finally:
            if deps.views is not None:
                deps.views.invalidate()

    run.__name__ = getattr(fn, "__name__", "job")
    run.__doc__ = fn.__doc__
    return run
