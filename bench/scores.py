"""R9 weekly scores for every rep (issue 5 benchmark): `store.repos.scores.compute_week` for one week on
10,000 reps, 5,000,000 activities and 1,000,000 key actions, on SQLite and on PostgreSQL; time, memory and the
query plans of its aggregate statements.

How: a fresh database (PostgreSQL: `salesbot_bench_scores`, dropped afterwards unless --keep; SQLite: a file
under /tmp) is migrated and filled with set-based SQL (generate_series / a recursive CTE), spread over the
364 days before NOW:
- reps, 5 customers each, opportunities = key actions / 4 (each with 4 named key actions);
- key actions: half with a due_at, half without (deadline from the SLA: created_at + 24 h or 72 h); 80 %
  signed off (some after their deadline), 90 % with an attachment;
- activities: six kinds in turn (visit, meeting, call, wechat, doc, approval); every other doc activity has a
  stored file linked to it (attachments + activity_attachments).
Then the last complete week before NOW is computed three times: the first writes the rows (timed), the second
upserts over them (timed), the third runs under tracemalloc (Python peak). Peak RSS growth is
getrusage(RUSAGE_SELF).ru_maxrss after − before the timed runs.

Run:  python -m bench.scores                    # both backends, full size
      python -m bench.scores --small            # CI size: 100 reps, 50,000 activities, 10,000 key actions
      python -m bench.scores --backend sqlite   # or postgresql; --pg-url / --sqlite-path to change the targets
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bot.clock import SHANGHAI
from bot.rules.metrics import last_complete_week, week_label
from bot.rules.score import ScoreSettings
from store.db import Database
from store.migrate import upgrade
from store.repos.scores import compute_week

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)  # a Wednesday: the week computed is W48
SPAN_S = 364 * 86400
NAMES = ("需求调研报告", "客户签字页", "竞品分析提交", "首次需求确认")
KINDS = ("visit", "meeting", "call", "wechat", "doc", "approval")
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/salesbot_bench_scores"
SQLITE_PATH = "/tmp/salesbot_bench_scores.db"
TARGET_S = 60.0


def series(dialect: str, n: int) -> str:
    if dialect == "postgresql":
        return f"generate_series(1::bigint, {n}) AS s(i)"
    return f"(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) SELECT i FROM c) AS s"


def ago(dialect: str, seconds_expr: str) -> str:
    """NOW − seconds_expr as the column type stores it (PostgreSQL timestamptz; SQLite naive UTC text with six
    decimals, the ORM's format, so it compares correctly with bound parameters)."""
    if dialect == "postgresql":
        return f"(TIMESTAMPTZ '{NOW.isoformat()}' - make_interval(secs => {seconds_expr}))"
    utc = NOW.astimezone(UTC)
    return f"(strftime('%Y-%m-%d %H:%M:%f', '{utc:%Y-%m-%d %H:%M:%S}', '-' || ({seconds_expr}) || ' seconds') || '000')"


def shift(dialect: str, ts: str, seconds_expr: str) -> str:
    """A timestamp expression plus seconds_expr (may be negative)."""
    if dialect == "postgresql":
        return f"({ts} + make_interval(secs => {seconds_expr}))"
    return f"(strftime('%Y-%m-%d %H:%M:%f', {ts}, ({seconds_expr}) || ' seconds') || '000')"


def pick(values: tuple[str, ...], expr: str) -> str:
    return "CASE " + " ".join(f"WHEN {expr} = {k} THEN '{v}'" for k, v in enumerate(values)) + " END"


async def fill(db: Database, reps: int, activities: int, key_actions: int) -> None:
    d = db.engine.dialect.name
    customers, opps = reps * 5, key_actions // len(NAMES)
    spread = f"((s.i * 7919) % {SPAN_S})"  # a scatter of the rows over the 364 days
    created = ago(d, str(SPAN_S + 86400))
    deadline = ago(d, spread)
    sla_s = f"CASE WHEN (s.i - 1) / {opps} = 3 THEN 86400 ELSE 259200 END"  # 首次需求确认 24 h, the others 72 h
    ka_created = f"CASE WHEN s.i % 2 = 0 THEN {ago(d, f'{spread} + 864000')} ELSE {ago(d, f'{spread} + {sla_s}')} END"
    signed = shift(d, deadline, "(s.i % 7 - 4) * 3600")  # 4 h before .. 2 h after the deadline
    true = "true" if d == "postgresql" else "1"
    sql = [
        f"INSERT INTO users (id, name, roles, active, created_at) SELECT s.i, 'rep' || s.i, '[\"rep\"]', {true}, "
        f"{created} FROM {series(d, reps)}",
        f"INSERT INTO customers (id, name, owner_id, created_at) SELECT s.i, 'c' || s.i, 1 + s.i % {reps}, {created} "
        f"FROM {series(d, customers)}",
        f"INSERT INTO opportunities (id, name, customer_id, owner_id, stage, stage_entered_at, last_progress_at, "
        f"status, created_at) SELECT s.i, 'o' || s.i, 1 + s.i % {customers}, 1 + s.i % {reps}, '需求诊断', "
        f"{created}, {created}, 'open', {created} FROM {series(d, opps)}",
        # Key action i: opportunity 1 + (i−1) % opps, name by (i−1) / opps; even i has a due_at (the deadline),
        # odd i none (created so that created_at + its SLA falls anywhere in the span).
        f"INSERT INTO key_actions (id, opportunity_id, name, due_at, attachment_media_id, attached_at, "
        f"signed_off_at, created_at) SELECT s.i, 1 + (s.i - 1) % {opps}, {pick(NAMES, f'(s.i - 1) / {opps}')}, "
        f"CASE WHEN s.i % 2 = 0 THEN {deadline} END, "
        f"CASE WHEN s.i % 10 <> 0 THEN 'ka' || s.i END, CASE WHEN s.i % 10 <> 0 THEN {shift(d, signed, '-3600')} END, "
        f"CASE WHEN s.i % 5 <> 0 THEN {signed} END, {ka_created} FROM {series(d, key_actions)}",
        f"INSERT INTO activities (id, kind, user_id, customer_id, opportunity_id, occurred_at, note_chars, keywords, "
        f"source, created_at, status, tags) SELECT s.i, {pick(KINDS, 's.i % 6')}, 1 + s.i % {reps}, "
        f"1 + s.i % {customers}, 1 + s.i % {opps}, {ago(d, spread)}, 40, '[]', 'import', {ago(d, spread)}, 'done', "
        f"'{{}}' FROM {series(d, activities)}",
        # Every other doc activity (i % 12 = 4) has a stored file: attachment i, linked to activity i.
        f"INSERT INTO attachments (id, channel, media_id, msg_type, user_id, status, received_at, expires_at, "
        f"attempts, next_attempt_at, created_at) SELECT s.i, 'wecom', 'm' || s.i, 'file', 1 + s.i % {reps}, "
        f"'stored', {ago(d, spread)}, {ago(d, spread)}, 0, {ago(d, spread)}, {ago(d, spread)} "
        f"FROM {series(d, activities)} WHERE s.i % 12 = 4",
        "INSERT INTO activity_attachments (activity_id, attachment_id, created_at) SELECT id, id, created_at "
        "FROM attachments",
    ]
    async with db.engine.begin() as conn:
        for statement in sql:
            await conn.execute(text(statement))
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))
        await conn.commit()


class Captured:
    """The SELECTs compute_week sends, to EXPLAIN afterwards."""

    def __init__(self, db: Database) -> None:
        self.statements: list[tuple[str, Any]] = []
        self._engine = db.engine.sync_engine

    def __enter__(self) -> Captured:
        event.listen(self._engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self._engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "GROUP BY" in statement.upper():
            self.statements.append((statement, parameters))


async def explain(db: Database, statement: str, parameters: Any) -> list[str]:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        if db.engine.dialect.name == "postgresql":
            rows = await driver.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *(parameters or ()))
            return [r[0] for r in rows]
        cursor = await driver.execute("EXPLAIN QUERY PLAN " + statement, parameters or ())
        return [str(r[-1]) for r in await cursor.fetchall()]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def run(url: str, reps: int, activities: int, key_actions: int, plans: bool) -> dict[str, Any]:
    await recreate(url)
    db = Database.open(url)
    settings = ScoreSettings()
    week = last_complete_week(NOW)
    out: dict[str, Any] = {"backend": db.engine.dialect.name}
    try:
        await upgrade(db.engine)
        t0 = time.perf_counter()
        await fill(db, reps, activities, key_actions)
        out["fill_s"] = time.perf_counter() - t0
        rss0 = rss_mib()
        for phase in ("first_s", "again_s"):
            with Captured(db) as captured:
                t0 = time.perf_counter()
                async with db.transaction() as s:
                    out["rows"] = await compute_week(s, week, NOW, settings)
                out[phase] = time.perf_counter() - t0
        out["rss_growth_mib"] = rss_mib() - rss0
        out["rss_peak_mib"] = rss_mib()
        tracemalloc.start()
        async with db.transaction() as s:
            await compute_week(s, week, NOW, settings)
        out["py_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        async with db.engine.connect() as conn:
            out["stats"] = (await conn.execute(text(
                "SELECT count(*), sum(due), sum(done), sum(on_time), sum(need_attachment), sum(with_attachment), "
                "avg(score) FROM weekly_scores"))).one()
        out["plans"] = [await explain(db, st, p) for st, p in captured.statements]
    finally:
        await db.close()
    out["week"] = week_label(week)
    return out


async def recreate(url: str) -> None:
    """A fresh database: the SQLite file removed, or the PostgreSQL database (named salesbot_*) re-created."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{u.database}{suffix}").unlink(missing_ok=True)
        return
    if not (u.database or "").startswith("salesbot_"):
        raise SystemExit("refusing to drop a PostgreSQL database not named salesbot_*")
    await drop_pg(url)
    admin = create_async_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    await admin.dispose()


async def drop_pg(url: str) -> None:
    u = make_url(url)
    admin = create_async_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
    await admin.dispose()


def report(r: dict[str, Any], plans: bool) -> bool:
    _rows, due, done, on_time, need, have, avg = r["stats"]
    ok = bool(max(r["first_s"], r["again_s"]) <= TARGET_S)
    print(f"\n== {r['backend']}: fill {r['fill_s']:.1f} s; {r['week']}: {r['rows']:,} rows")
    print(f"   compute_week: first {r['first_s']:.2f} s, again (upsert) {r['again_s']:.2f} s — target ≤ "
          f"{TARGET_S:.0f} s: {'met' if ok else 'MISSED'}")
    print(f"   memory: peak RSS growth {r['rss_growth_mib']:.1f} MiB (process peak {r['rss_peak_mib']:.0f} MiB), "
          f"Python peak under tracemalloc {r['py_peak_mib']:.1f} MiB")
    print(f"   counted: due {due:,}, done {done:,}, on time {on_time:,}, need attachment {need:,}, "
          f"with {have:,}; mean score {float(avg):.1f}")
    for i, plan in enumerate(r["plans"]):
        print(f"   plan {i + 1}{'' if plans else ' (first lines)'}:")
        for line in plan if plans else plan[:12]:
            print("      ", line)
    return ok


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--backend", choices=("both", "sqlite", "postgresql"), default="both")
    ap.add_argument("--pg-url", default=PG_URL)
    ap.add_argument("--sqlite-path", default=SQLITE_PATH)
    ap.add_argument("--small", action="store_true", help="100 reps, 50,000 activities, 10,000 key actions")
    ap.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    ap.add_argument("--plans", action="store_true", help="print the plans in full")
    args = ap.parse_args(argv)
    size = (100, 50_000, 10_000) if args.small else (10_000, 5_000_000, 1_000_000)
    print(f"{size[0]:,} reps, {size[1]:,} activities, {size[2]:,} key actions; NOW = {NOW.isoformat()}")
    urls = []
    if args.backend in ("both", "sqlite"):
        urls.append(f"sqlite+aiosqlite:///{args.sqlite_path}")
    if args.backend in ("both", "postgresql"):
        if not (make_url(args.pg_url).database or "").startswith("salesbot_"):
            raise SystemExit("refusing to use a PostgreSQL database not named salesbot_*")
        urls.append(args.pg_url)
    ok = True
    for url in urls:
        try:
            ok &= report(await run(url, *size, args.plans), args.plans)
        finally:
            if not args.keep:
                if url.startswith("sqlite"):
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{args.sqlite_path}{suffix}").unlink(missing_ok=True)
                else:
                    await drop_pg(url)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
