"""create_app(settings) -> web.Application. Engine, HTTP session, writers, sender and scheduler
live in cleanup contexts: built at start-up, torn down in reverse order, never at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from sqlalchemy import text

from bot.api.routes import setup_api
from bot.channels.wecom.callback import WeComCallback
from bot.clock import Clock
from bot.config import Settings
from bot.deps import DEPS, Deps
from bot.dispatch.router import Router
from bot.nlu.lexicon import Lexicon
from bot.runtime import build_deps, connected, start_nlu

log = logging.getLogger(__name__)

CleanupCtx = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings,
    clock: Clock | None = None,
    *,
    run_sender: bool = True,
    run_scheduler: bool | None = None,
    recover_on_start: bool = True,
    router: Router | None = None,
    lexicon: Lexicon | None = None,
) -> web.Application:
    """The salesbot web application: WeCom callback, JSON API, /healthz and /metrics."""
    app = web.Application(client_max_size=8 * 1024 * 1024)
    deps = build_deps(settings, clock, router, lexicon)
    app[DEPS] = deps
    assert deps.inbox is not None
    callback = WeComCallback(
        settings.wecom,
        deps.inbox,
        deps.metrics,
        on_stored=deps.process_later,
        clock=deps.clock,
        max_body_bytes=settings.server.max_body_bytes,
    )
    app.router.add_routes(callback.routes())
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    setup_api(app)

    app.cleanup_ctx.append(_connected)
    app.cleanup_ctx.append(_processing(recover_on_start))
    if run_sender:
        app.cleanup_ctx.append(_sender_loop)
        app.cleanup_ctx.append(_media_loop)
    if settings.scheduler.enabled if run_scheduler is None else run_scheduler:
        app.cleanup_ctx.append(_scheduler)
    return app


async def _connected(app: web.Application) -> AsyncIterator[None]:
    async with connected(app[DEPS]):
        await start_nlu(app[DEPS])
        yield


def _processing(recover_on_start: bool) -> CleanupCtx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        deps = app[DEPS]
        assert deps.inbox is not None and deps.dispatcher is not None
        deps.inbox.start()
        if recover_on_start:
            # Rows stored before a crash but never processed: processed now (a tracked task).
            deps.spawn(deps.dispatcher.recover(deps.clock.now()), name="inbox-recovery-start")
        recovery = asyncio.create_task(_recovery_loop(deps), name="inbox-recovery")
        yield
        recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recovery
        # Stop taking new rows, then let in-flight processing finish (bounded).
        await deps.inbox.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(deps.drain(), timeout=deps.settings.server.shutdown_grace_s)

    return ctx


async def _recovery_loop(deps: Deps) -> None:
    """Failed inbox rows are retried when due, and rows a dead task left pending are picked up. This
    runs whether or not the scheduler is enabled: retries must never depend on an optional part."""
    assert deps.dispatcher is not None
    interval = deps.settings.scheduler.inbox_recovery_s
    while True:
        await asyncio.sleep(interval)
        try:
            await deps.dispatcher.recover(deps.clock.now(), grace_s=interval)
        except Exception:
            log.exception("inbox recovery pass failed; trying again in %ss", interval)


async def _sender_loop(app: web.Application) -> AsyncIterator[None]:
    deps = app[DEPS]
    assert deps.sender is not None
    task = asyncio.create_task(deps.sender.run_forever(deps.outbox_wakeup), name="outbox-sender")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _media_loop(app: web.Application) -> AsyncIterator[None]:
    """R6: attachments are downloaded when woken (`Deps.wake_media`) and at least every
    `[media] fetch_interval_s`, outside any transaction."""
    deps = app[DEPS]
    assert deps.media is not None
    task = asyncio.create_task(deps.media.run_forever(deps.media_wakeup), name="media-fetcher")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _scheduler(app: web.Application) -> AsyncIterator[None]:
    from jobs.scheduler import build_scheduler

    scheduler = build_scheduler(app[DEPS])
    scheduler.start()
    yield
    scheduler.shutdown(wait=False)


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers, 503 otherwise."""
    deps = request.app[DEPS]
    try:
        async with deps.db.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
    except Exception as exc:
        log.warning("health check failed: %s", exc)
        return web.json_response({"status": "error", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition format."""
    body = await request.app[DEPS].metrics.render()
    return web.Response(text=body, content_type="text/plain", charset="utf-8")
