"""Operating it: /healthz, /metrics, the scheduler's job settings."""

from __future__ import annotations

from bot.clock import SettableClock
from bot.runtime import build_deps
from jobs.scheduler import build_scheduler
from tests.conftest import START, make_settings
from tests.harness import running_bot, seed_team


async def test_healthz(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    async with running_bot(db_url, clock, run_sender=False) as bot:
        resp = await bot.client.get("/healthz")
        assert resp.status == 200 and (await resp.json())["database"] == "ok"
        await bot.deps.db.engine.dispose()
        bot.deps.db.engine.sync_engine.pool._creator = lambda: (_ for _ in ()).throw(OSError("down"))  # type: ignore[attr-defined]
        resp = await bot.client.get("/healthz")
        assert resp.status == 503


async def test_metrics_exposes_the_spine(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        inner = bot.wire.text("zhangsan", "帮助", msg_id=99)
        await bot.send(inner)
        await bot.send(inner)
        await bot.post(bot.wire.envelope(inner, bad_signature=True))
        await bot.deps.drain()
        body = await (await bot.client.get("/metrics")).text()
        assert 'salesbot_inbound_total{channel="wecom",type="text"} 1' in body
        assert 'salesbot_inbound_duplicates_total{channel="wecom"} 1' in body
        assert 'salesbot_inbound_rejected_total{channel="wecom",reason="bad signature"} 1' in body
        assert "salesbot_outbox_backlog 1" in body
        assert "# TYPE salesbot_outbox_oldest_age_seconds gauge" in body
        clock.advance(seconds=30)
        body = await (await bot.client.get("/metrics")).text()
        assert "salesbot_outbox_oldest_age_seconds 30" in body
        await bot.settle()
        body = await (await bot.client.get("/metrics")).text()
        assert 'salesbot_outbox_sends_total{channel="wecom",errcode="0",kind="markdown"} 1' in body
        assert "salesbot_outbox_backlog 0" in body


def test_scheduler_jobs_never_skip_a_missed_run(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """APScheduler's default grace of 1 s would skip late runs; ours run once, late, after downtime."""
    deps = build_deps(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"), SettableClock(START))
    scheduler = build_scheduler(deps)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"outbox", "sync-org", "media-fetch", "sweeps", "r16-standup-prompt", "r16-standup-table",
                         "r12-coaching", "r13-depth", "r9-scores", "prune"}
    for job in jobs.values():
        assert job.misfire_grace_time is None and job.coalesce is True and job.max_instances == 1
    assert str(jobs["sync-org"].trigger) == "cron[hour='2', minute='30']"
    assert str(jobs["media-fetch"].trigger) == "interval[0:00:30]"  # [media] fetch_interval_s
    # R16: the Monday stand-up on its own cron ([rules] standup_weekday, standup_prompt_at, standup_table_at)
    assert str(jobs["r16-standup-prompt"].trigger) == "cron[day_of_week='mon', hour='9', minute='0']"
    assert str(jobs["r16-standup-table"].trigger) == "cron[day_of_week='mon', hour='10', minute='0']"
    assert str(jobs["r9-scores"].trigger) == "cron[hour='6', minute='0']"  # R9 daily at [metrics] weekly_at


async def test_scheduled_job_runs_are_counted_and_errors_contained(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """A failing job (WeCom unreachable) is logged and counted; it never kills the scheduler."""
    from bot.runtime import connected
    from jobs.scheduler import run_job

    deps = build_deps(make_settings(db_url, api_base="http://127.0.0.1:9"), clock)
    async with connected(deps):
        assert await run_job(deps, "outbox") == 0
        assert await run_job(deps, "sync-org") == 0  # port 9: connection refused
    assert deps.metrics.value("salesbot_job_runs_total", job="outbox", outcome="ok") == 1
    assert deps.metrics.value("salesbot_job_runs_total", job="sync-org", outcome="error") == 1
