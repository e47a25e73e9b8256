"""`salesbot`: serve, demo, chat, db upgrade, import, sync-org, jobs run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.clock import Clock, SettableClock, SystemClock, parse_instant
from bot.config import ConfigError, Settings, load

DEFAULT_CONFIG = "salesbot.toml"


def _settings(args: argparse.Namespace, *, require_wecom: bool = True) -> Settings:
    path = args.config
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    return load(path, require_wecom=require_wecom)


def _clock(now: str | None) -> Clock:
    if not now:
        return SystemClock()
    try:
        return SettableClock(parse_instant(now))
    except ValueError:
        raise ConfigError(f"--now: not an ISO 8601 instant: {now!r} (e.g. 2026-11-30T09:00:00+08:00)") from None


def cmd_serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.app import create_app

    settings = _settings(args)
    app = create_app(settings)
    web.run_app(app, host=args.host or settings.server.host, port=args.port or settings.server.port,
                print=lambda *_: logging.getLogger("salesbot").info(
                    "serving on http://%s:%s", args.host or settings.server.host, args.port or settings.server.port))
    return 0


async def _db_upgrade(settings: Settings) -> str | None:
    from store.db import Database, check_database
    from store.migrate import current_revision, upgrade

    db = Database.open(settings.database.url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms)
    try:
        await upgrade(db.engine)
        await check_database(db.engine)
        return await current_revision(db.engine)
    finally:
        await db.close()


def cmd_db(args: argparse.Namespace) -> int:
    revision = asyncio.run(_db_upgrade(_settings(args, require_wecom=False)))
    print(f"数据库已升级到版本 {revision}")
    return 0


async def _import(settings: Settings, kind: str, path: Path, clock: Clock, dry_run: bool) -> int:
    from store.db import Database
    from store.importer import format_report, import_csv
    from store.migrate import upgrade

    db = Database.open(settings.database.url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms)
    try:
        await upgrade(db.engine)
        report = await import_csv(db, kind, path, clock.now(), stages=settings.funnel.stages, dry_run=dry_run)
    finally:
        await db.close()
    print(format_report(report))
    return 1 if report.errors else 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = _settings(args, require_wecom=False)
    return asyncio.run(_import(settings, args.kind, Path(args.file), _clock(args.now), args.dry_run))


async def _run_job(settings: Settings, name: str, clock: Clock, *, force: bool = False) -> int:
    from bot.runtime import build_deps, connected, start_nlu
    from jobs.registry import registry

    jobs = registry()
    if name not in jobs:
        raise ConfigError(f"unknown job {name!r} (known: {', '.join(sorted(jobs))})")
    deps = build_deps(settings, clock)
    async with connected(deps):
        if name == "inbox-recovery":  # processes messages: needs the language understanding
            await start_nlu(deps)
        if name == "sync-org":
            from jobs.registry import run_sync_org

            count = await run_sync_org(deps, clock.now(), force=force)
        else:
            count = await jobs[name](deps, clock.now())
        await deps.drain()
    return count


def cmd_jobs(args: argparse.Namespace) -> int:
    count = asyncio.run(_run_job(_settings(args), args.name, _clock(args.now)))
    print(f"{args.name}: {count}")
    return 0


def cmd_sync_org(args: argparse.Namespace) -> int:
    count = asyncio.run(_run_job(_settings(args), "sync-org", _clock(args.now), force=args.force))
    print(f"sync-org: {count} changes")
    return 0


async def _chat(settings: Settings, userid: str, clock: Clock) -> int:
    from bot.channels.local import LocalChat
    from bot.runtime import build_deps, connected, start_nlu

    deps = build_deps(settings, clock)
    async with connected(deps):
        await start_nlu(deps)
        assert deps.inbox is not None
        deps.inbox.start()
        chat = LocalChat(deps, userid)
        print(f"以 {userid} 的身份和 salesbot 对话（输入 /quit 退出）")
        loop = asyncio.get_running_loop()
        try:
            while True:
                line = await loop.run_in_executor(None, _read_line)
                if line is None or line.strip() in {"/quit", "/exit"}:
                    break
                if not line.strip():
                    continue
                for reply in await chat.say(line):
                    print(f"salesbot> {reply}\n")
        finally:
            await deps.inbox.stop()
    return 0


def _read_line() -> str | None:
    try:
        return input("你> ")
    except EOFError:
        return None


def cmd_chat(args: argparse.Namespace) -> int:
    return asyncio.run(_chat(_settings(args, require_wecom=False), args.user, _clock(args.now)))


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    return asyncio.run(run_demo(keep=args.keep))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salesbot", description="Sales-process bot for WeCom and DingTalk")
    parser.add_argument("--config", "-c", help=f"TOML config file (default: ./{DEFAULT_CONFIG} if present)")
    parser.add_argument("--log-level", help="DEBUG, INFO (default), WARNING; the demo defaults to WARNING")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the server (callbacks, API, sender, scheduler)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("db", help="database maintenance")
    p.add_argument("action", choices=["upgrade"])
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("import", help="import a CSV file (upsert by external_id)")
    p.add_argument("kind", choices=["users", "customers", "leads", "opportunities", "contracts", "payments"])
    p.add_argument("file")
    p.add_argument("--now", help="ISO 8601 instant used as the import time")
    p.add_argument("--dry-run", action="store_true", help="check every row and report, write nothing")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("sync-org", help="pull departments and users from WeCom")
    p.add_argument("--now")
    p.add_argument("--force", action="store_true", help="apply even if many users would be deactivated")
    p.set_defaults(func=cmd_sync_org)

    p = sub.add_parser("jobs", help="scheduled jobs")
    jobs_sub = p.add_subparsers(dest="jobs_command", required=True)
    run = jobs_sub.add_parser("run", help="run one job at a given moment")
    run.add_argument("name")
    run.add_argument("--now", help="ISO 8601 instant (naive = Asia/Shanghai)")
    run.set_defaults(func=cmd_jobs)

    p = sub.add_parser("chat", help="chat with the bot in the terminal as a directory user")
    p.add_argument("--user", required=True, help="the user's WeCom userid")
    p.add_argument("--now")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("demo", help="sample team + fake WeCom + a scripted conversation over the real wire")
    p.add_argument("--keep", action="store_true", help="keep the demo's temporary folder")
    p.set_defaults(func=cmd_demo)
    return parser


def _operational_errors() -> tuple[type[Exception], ...]:
    """Failures of the outside world (network, WeCom, a refused sync): a message, not a traceback."""
    from bot.channels.wecom.api import ApiNetworkError, WeComApiError
    from jobs.sync_org import SyncError
    from store.db import DatabaseCheckError
    from store.migrate import MigrationError

    return (ApiNetworkError, WeComApiError, SyncError, DatabaseCheckError, MigrationError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = args.log_level or ("WARNING" if args.command == "demo" else "INFO")
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if str(level).upper() != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
    failures = _operational_errors()
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"配置错误 / config error: {exc}", file=sys.stderr)
        return 2
    except failures as exc:
        print(f"失败 / failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
