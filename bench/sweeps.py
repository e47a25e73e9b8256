"""Each rule sweep on 1,000,000 open opportunities (issue 4 benchmark): time to find and enqueue with 0 % due
versus 1 % due, on one table, and the query plan of each sweep's queries.

How: a fresh PostgreSQL database (or SQLite file) is migrated and filled with SQL (generate_series / a
recursive CTE): 1 region, 50 teams with a manager each, 1,000 reps, 200,000 customers, `--opps`
opportunities over the funnel stages with one activity each, a stage history for every 5th of them (one
move, every 10th two: 0.3 × `--opps` stage_moves rows, for R12), and `--opps / 10` leads. Every time is placed
so that, at the bench's `now`, nothing is due. Each sweep in `jobs.sweeps.runner.sweeps()` is run at
`now` (0 % due, timed), then 1 % of the opportunities and leads are moved back in time so that they are
due for every rule, and each sweep is run again (1 % due, timed: the escalation and notice inserts
included), then once more (already fired: the anti-join must make this as cheap as 0 %). The SELECTs a
sweep issues are captured and EXPLAINed: the plan must use an index, not a scan of opportunities.

Run:  python -m bench.sweeps --url postgresql+asyncpg://postgres@127.0.0.1:5432/salesbot_bench
      python -m bench.sweeps --url sqlite+aiosqlite:////tmp/bench.db --opps 200000
      python -m bench.sweeps --only r12-coaching --plans   (one sweep, its plans in full)
The database is dropped and re-created (PostgreSQL: it must be named salesbot_*; SQLite: the file).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from bot.clock import SHANGHAI, SettableClock
from bot.config import Settings
from bot.deps import Deps
from bot.runtime import build_deps
from store.migrate import upgrade

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)  # a Wednesday, inside working hours
TEAMS, REPS, CUSTOMERS = 50, 1000, 200_000


def settings_for(url: str) -> Settings:
    from bot.config import from_mapping

    return from_mapping({"database": {"url": url, "pool_size": 5}, "scheduler": {"enabled": False},
                         "org": {"sales_ops": ["ops1"]}}, env={}, require_wecom=False)


async def recreate(url: str) -> None:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = Path(u.database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    if not (u.database or "").startswith("salesbot_"):
        raise SystemExit("refusing to drop a PostgreSQL database not named salesbot_*")
    from sqlalchemy.ext.asyncio import create_async_engine

    admin = create_async_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{u.database}"'))
    await admin.dispose()


def series(dialect: str, n: int) -> str:
    """A row source `s(i)` of 1..n in either dialect."""
    if dialect == "postgresql":
        return f"generate_series(1, {n}) AS s(i)"
    return f"(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) SELECT i FROM c) AS s"


def ts(dialect: str, base: datetime, seconds_expr: str) -> str:
    """base − seconds_expr, as the column type stores it (aware UTC; SQLite: ISO text)."""
    iso = base.astimezone().isoformat()
    if dialect == "postgresql":
        return f"(TIMESTAMPTZ '{iso}' - make_interval(secs => {seconds_expr}))"
    return (f"strftime('%Y-%m-%d %H:%M:%f', datetime('{base.astimezone(SHANGHAI).astimezone().isoformat()}', "
            f"'-' || ({seconds_expr}) || ' seconds'))")


async def fill(deps: Deps, opps: int) -> None:
    db = deps.db
    dialect = db.engine.dialect.name
    stages = deps.settings.funnel.stages[:-1]  # open deals sit before 复购
    n_stages = len(stages)

    def stage_case(back: int = 0) -> str:  # opportunity i sits in stage i % n; `back` stages before it
        return ("CASE " + " ".join(f"WHEN (s.i + {n_stages - back}) % {n_stages} = {k} THEN '{st}'"
                                   for k, st in enumerate(stages)) + " END")

    recent = ts(dialect, NOW, "(s.i % 60) * 3600")  # 0–59 h ago: below every limit (R3 72 h, R4 72 h)
    created = ts(dialect, NOW, "3600")
    sql = [
        "INSERT INTO org_units (id, kind, name, created_at) VALUES (1, 'region', '华东', " + created + ")",
        f"INSERT INTO org_units (id, kind, name, parent_id, created_at) SELECT s.i + 1, 'team', 'team' || s.i, 1, "
        f"{created} FROM {series(dialect, TEAMS)}",
        f"INSERT INTO users (id, name, wecom_userid, roles, team_id, active, created_at) SELECT s.i, 'rep' || s.i, "
        f"'u' || s.i, '[\"rep\"]', 2 + (s.i % {TEAMS}), true, {created} FROM {series(dialect, REPS)}",
        f"INSERT INTO users (id, name, wecom_userid, roles, active, created_at) VALUES ({REPS + 1}, 'ops', 'ops1', "
        f"'[\"sales_ops\"]', true, {created})",
        # Team t is managed by rep t (a manager who also sells), the region by rep 1.
        "UPDATE org_units SET manager_id = id - 1 WHERE kind = 'team'",
        "UPDATE org_units SET manager_id = 1 WHERE kind = 'region'",
        f"INSERT INTO customers (id, name, owner_id, region_id, industry, created_at) SELECT s.i, 'customer' || s.i, "
        f"1 + (s.i % {REPS}), 1, 'IT服务', {created} FROM {series(dialect, CUSTOMERS)}",
        f"INSERT INTO opportunities (id, name, customer_id, owner_id, stage, stage_entered_at, last_progress_at, "
        f"status, created_at) SELECT s.i, 'opp' || s.i, 1 + (s.i % {CUSTOMERS}), 1 + (s.i % {REPS}), {stage_case()}, "
        f"{recent}, {recent}, 'open', {created} FROM {series(dialect, opps)}",
        f"INSERT INTO activities (kind, user_id, customer_id, opportunity_id, occurred_at, note_chars, keywords, "
        f"source, created_at, status, tags) SELECT 'visit', 1 + (s.i % {REPS}), 1 + (s.i % {CUSTOMERS}), s.i, "
        f"{recent}, 40, '[]', 'import', {recent}, 'done', '{{}}' FROM {series(dialect, opps)}",
        # R12 stage history: every 5th opportunity entered its stage by a move from the stage before (at its
        # stage_entered_at, as PipelineRepo.move records it), every 10th also an earlier one 3–9 days before
        # (a stay in the previous stage that was past its limit in the week before `now`'s). The stage before
        # the first is the last open stage (a move back). Nothing in the other sweeps reads stage_moves.
        f"INSERT INTO stage_moves (opportunity_id, from_stage, to_stage, at, forced) SELECT s.i, {stage_case(1)}, "
        f"{stage_case()}, {recent}, false FROM {series(dialect, opps)} WHERE s.i % 5 = 0",
        f"INSERT INTO stage_moves (opportunity_id, from_stage, to_stage, at, forced) SELECT s.i, {stage_case(2)}, "
        f"{stage_case(1)}, {ts(dialect, NOW, '(s.i % 60) * 3600 + (3 + s.i % 7) * 86400')}, false "
        f"FROM {series(dialect, opps)} WHERE s.i % 10 = 0",
        f"INSERT INTO leads (title, region_id, created_at, assigned_at, status) SELECT 'lead' || s.i, 1, "
        f"{ts(dialect, NOW, '3600')}, NULL, 'open' FROM {series(dialect, opps // 10)}",
    ]
    async with db.engine.begin() as conn:
        for statement in sql:
            await conn.execute(text(statement))
        if dialect == "postgresql":
            for table in ("org_units", "users", "customers", "opportunities", "activities", "stage_moves", "leads"):
                await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT max(id) FROM {table}))"))
    async with db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))


async def make_due(deps: Deps, opps: int) -> None:
    """1 % of opportunities (every 100th) and of leads become due for every rule: no progress and no
    stage move for 10 days (past R3, R4 and R5's 3 × 72 h), leads unassigned for 5 h (past R1)."""
    dialect = deps.db.engine.dialect.name
    old = ts(dialect, NOW, str(10 * 86400))
    async with deps.db.engine.begin() as conn:
        await conn.execute(text(f"UPDATE opportunities SET stage_entered_at = {old}, last_progress_at = {old} "
                                f"WHERE id % 100 = 0"))
        await conn.execute(text(f"UPDATE activities SET occurred_at = {old} WHERE opportunity_id % 100 = 0"))
        await conn.execute(text(f"UPDATE leads SET created_at = {ts(dialect, NOW, str(5 * 3600))} WHERE id % 100 = 0"))
    async with deps.db.engine.connect() as conn:
        await conn.execute(text("ANALYZE"))


async def reset(deps: Deps) -> None:
    """Undo what earlier sweeps did: no escalations or notices, no deal in the silent pool."""
    async with deps.db.engine.begin() as conn:
        for statement in ("DELETE FROM notices", "DELETE FROM sweep_periods", "DELETE FROM bonus_freezes",
                          "DELETE FROM escalations",
                          "UPDATE opportunities SET status = 'open' WHERE status = 'silent'"):
            await conn.execute(text(statement))


class Captured:
    """The SELECTs a sweep sends, to EXPLAIN afterwards."""

    def __init__(self, deps: Deps) -> None:
        self.statements: list[tuple[str, Any]] = []
        self._engine = deps.db.engine.sync_engine

    def __enter__(self) -> Captured:
        event.listen(self._engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: Any) -> None:
        event.remove(self._engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM" in statement.upper():
            self.statements.append((statement, parameters))


async def explain(deps: Deps, statement: str, parameters: Any) -> list[str]:
    async with deps.db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        if deps.db.engine.dialect.name == "postgresql":
            rows = await driver.fetch("EXPLAIN " + statement, *(parameters or ()))
            return [r[0] for r in rows]
        cursor = await driver.execute("EXPLAIN QUERY PLAN " + statement, parameters or ())
        return [str(r[-1]) for r in await cursor.fetchall()]


async def time_sweep(deps: Deps, fn: Any) -> tuple[float, int]:
    t0 = time.perf_counter()
    count = await fn(deps, NOW)
    return time.perf_counter() - t0, int(count)


async def main(argv: list[str] | None = None) -> int:
    from jobs.sweeps.runner import sweeps as every_minute
    from jobs.sweeps.runner import weekly

    def sweeps() -> dict[str, Any]:
        every = {**every_minute(), **weekly()}
        return {name: fn for name, fn in every.items() if not args.only or name in args.only}

    def known() -> list[str]:
        return [*every_minute(), *weekly()]

    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("SALESBOT_BENCH_URL",
                                                    "postgresql+asyncpg://postgres@127.0.0.1:5432/salesbot_bench"))
    ap.add_argument("--opps", type=int, default=1_000_000)
    ap.add_argument("--plans", action="store_true", help="print every captured plan in full")
    ap.add_argument("--only", action="append", default=[], metavar="SWEEP",
                    help="time only this sweep (a job name such as r12-coaching; repeatable)")
    args = ap.parse_args(argv)
    unknown = set(args.only) - set(known())
    if unknown:
        ap.error(f"unknown sweep(s) {sorted(unknown)}; known: {', '.join(known())}")

    await recreate(args.url)
    settings = settings_for(args.url)
    deps = build_deps(settings, SettableClock(NOW))
    try:
        await upgrade(deps.db.engine)
        t0 = time.perf_counter()
        await fill(deps, args.opps)
        print(f"filled {args.opps:,} opportunities (+ activities, {args.opps // 10:,} leads) "
              f"on {deps.db.engine.dialect.name} in {time.perf_counter() - t0:.1f} s\n")
        rows: dict[str, dict[str, Any]] = {name: {} for name in sweeps()}
        plans: dict[str, list[str]] = {}
        for name, fn in sweeps().items():
            rows[name]["none"] = await time_sweep(deps, fn)
        await make_due(deps, args.opps)
        for name, fn in sweeps().items():
            await reset(deps)  # each sweep meets the same 1 % (R5 would otherwise hide R3's deals)
            with Captured(deps) as captured:
                rows[name]["due"] = await time_sweep(deps, fn)
            rows[name]["again"] = await time_sweep(deps, fn)
            plan: list[str] = []
            for statement, params in captured.statements[:3]:
                plan += await explain(deps, statement, params)
            plans[name] = plan
        print("| sweep | 0 % due: s (fired) | 1 % due: s (fired) | again: s (fired) | uses an index "
              "| scans opportunities |")
        print("| --- | ---: | ---: | ---: | --- | --- |")
        verdict = 0
        for name, r in rows.items():
            plan = plans.get(name, [])
            indexed = any(re.search(r"Index|USING (COVERING )?INDEX|SEARCH", line) for line in plan)
            seq = any(re.search(r"Seq Scan on opportunities|SCAN opportunities\b(?! USING)", line) for line in plan)
            slow = r["due"][0] > 1.0
            verdict |= slow or seq
            print(f"| {name} | {r['none'][0]:.3f} ({r['none'][1]}) | {r['due'][0]:.3f} ({r['due'][1]}) | "
                  f"{r['again'][0]:.3f} ({r['again'][1]}) | {'yes' if indexed else 'NO'} | {'YES' if seq else 'no'} |")
        for name, plan in plans.items():
            print(f"\n{name} plan{'' if args.plans else ' (first lines)'}:")
            for line in plan if args.plans else plan[:8]:
                print("   ", line)
        print("\ntarget: ≤ 1 s per sweep with 1 % due, no sequential scan of opportunities:",
              "met" if not verdict else "MISSED")
        return 0
    finally:
        await deps.db.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
