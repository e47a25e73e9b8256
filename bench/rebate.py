"""R1 benchmark (issue 5): "我的返点" for a rep with 10,000 contracts — from the signed callback to the reply
handed to the outbox (the unit of work committed), p99 ≤ 100 ms.

How: the real app (create_app) on a fresh SQLite file or a PostgreSQL database (named salesbot_*, dropped and
re-created), one team, and a rep with `--contracts` signed contracts (legal approval done, 1–3 payments each,
some partly paid, some refunded, one R7 freeze). Each request is a signed, encrypted "我的返点" callback sent to
the running server; the time runs until the dispatcher has committed the reply to the outbox. Three series:
- own-write: before each request a payment of this rep is written (as an import would): their rebate version
  moves, the contract it names is read again and the summary computed;
- other-write: the view cache is cleared before each request (a write elsewhere): the rep's contracts come
  from memory (same version), the summary is computed;
- repeat: nothing changed since the last answer (the cached text).
Also timed: the first answer after a start (every contract read; so is the first after the daily prune),
reading the rep's book and the pure `summarize` alone.

Run:  python -m bench.rebate [--contracts 10000] [--requests 200] [--url postgresql+asyncpg://…/salesbot_bench_rebate]
      python -m bench.rebate --short      # CI form: 1,000 contracts, 30 requests
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from bench.sweeps import recreate, series, ts
from bot.clock import SettableClock
from bot.rules.rebate import summarize
from store.migrate import upgrade
from store.models import Payment
from store.repos.contracts import ContractRepo
from tests.conftest import START
from tests.harness import running_bot, seed_team


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def fill(db_url: str, clock: SettableClock, contracts: int) -> None:
    from store.db import Database

    db = Database.open(db_url)
    try:
        await upgrade(db.engine)
        ids = await seed_team(db, clock)
        dialect = db.engine.dialect.name
        rep = ids["zhangsan"]
        now = clock.now()
        signed = ts(dialect, now, "(s.i % 400) * 86400 + 3600")  # over the last ~13 months
        paid = ts(dialect, now, "(s.i % 400) * 86400 - (s.i % 40) * 86400")  # 0–39 days after signing
        sql = [
            f"INSERT INTO customers (id, name, owner_id, industry, customer_type, created_at) SELECT 1000 + s.i, "
            f"'客户' || s.i, {rep}, CASE WHEN s.i % 3 = 0 THEN 'IT服务' ELSE '零售门店' END, 'KA', {signed} "
            f"FROM {series(dialect, contracts)}",
            f"INSERT INTO contracts (id, customer_id, owner_id, amount, status, legal_approved_at, signed_at, "
            f"product_line, created_at) SELECT s.i, 1000 + s.i, {rep}, 10000 + (s.i % 97) * 1000, 'signed', "
            f"{signed}, {signed}, CASE WHEN s.i % 5 = 0 THEN '云服务' ELSE '软件' END, {signed} "
            f"FROM {series(dialect, contracts)}",
            # A first payment on most, the rest on two thirds of those, a refund on a few.
            f"INSERT INTO payments (contract_id, amount, received_at, created_at) SELECT s.i, "
            f"(10000 + (s.i % 97) * 1000) / 2, {paid}, {paid} FROM {series(dialect, contracts)} WHERE s.i % 10 <> 0",
            f"INSERT INTO payments (contract_id, amount, received_at, created_at) SELECT s.i, "
            f"(10000 + (s.i % 97) * 1000) / 2, {paid}, {paid} FROM {series(dialect, contracts)} WHERE s.i % 3 <> 0 "
            f"AND s.i % 10 <> 0",
            f"INSERT INTO payments (contract_id, amount, received_at, created_at) SELECT s.i, -500, {paid}, {paid} "
            f"FROM {series(dialect, contracts)} WHERE s.i % 50 = 1",
            f"INSERT INTO bonus_freezes (user_id, contract_id, month, reason, created_at) VALUES ({rep}, 10, "
            f"'{(now - timedelta(days=1)).strftime('%Y-%m')}', 'R7 回款逾期', {ts(dialect, now, '60')})",
        ]
        async with db.engine.begin() as conn:
            for statement in sql:
                await conn.execute(text(statement))
            if dialect == "postgresql":
                for table in ("customers", "contracts", "payments"):
                    await conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                            f"(SELECT max(id) FROM {table}))"))
                await conn.execute(text("ANALYZE"))
    finally:
        await db.close()


async def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("SALESBOT_BENCH_REBATE_URL", ""))
    ap.add_argument("--contracts", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--short", action="store_true")
    args = ap.parse_args(argv)
    if args.short:
        args.contracts, args.requests = 1_000, 30
    with tempfile.TemporaryDirectory(prefix="salesbot-bench-rebate-") as tmp:
        url = args.url or f"sqlite+aiosqlite:///{Path(tmp) / 'rebate.db'}"
        await recreate(url)
        clock = SettableClock(START)
        t0 = time.perf_counter()
        await fill(url, clock, args.contracts)
        took = time.perf_counter() - t0
        print(f"filled {args.contracts:,} contracts for one rep in {took:.1f} s ({url.split(':')[0]})")
        async with running_bot(url, clock, run_sender=False) as bot:
            deps = bot.deps
            async with deps.db.sessions() as s:
                t = time.perf_counter()
                book = await ContractRepo(s).book(1)
                read = time.perf_counter() - t
            t = time.perf_counter()
            summarize(deps.settings.rebate, 1, book.contracts, book.payments, book.freezes, clock.now())
            pure = time.perf_counter() - t
            print(f"book read {read * 1000:.1f} ms ({len(book.contracts):,} contracts, {len(book.payments):,} "
                  f"payments); summarize {pure * 1000:.1f} ms")
            t = time.perf_counter()  # the first question after a start reads every contract (then per change)
            await bot.say("zhangsan", "我的返点")
            await deps.drain()
            print(f"first answer after start (all {args.contracts:,} contracts read): "
                  f"{(time.perf_counter() - t) * 1000:.1f} ms")
            series_ms: dict[str, list[float]] = {"own-write": [], "other-write": [], "repeat": []}
            for name in series_ms:
                for i in range(args.requests):
                    clock.advance(timedelta(seconds=1))
                    if name == "own-write":
                        async with deps.db.transaction() as s:
                            s.add(Payment(contract_id=1 + i, amount=Decimal(1), created_at=clock.now(),
                                          received_at=clock.now() - timedelta(days=1)))
                    if name != "repeat" and deps.views is not None:
                        deps.views.invalidate()
                    t = time.perf_counter()
                    await bot.say("zhangsan", "我的返点")
                    await deps.drain()  # the unit of work committed the reply to the outbox
                    series_ms[name].append((time.perf_counter() - t) * 1000)
            async with deps.db.sessions() as s:
                replies = (await s.execute(text("SELECT count(*) FROM outbox"))).scalar_one()
            assert replies == 3 * args.requests + 1, f"{replies} replies for {3 * args.requests + 1} requests"
        print("| series | requests | p50 ms | p90 ms | p99 ms | max ms |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, values in series_ms.items():
            print(f"| {name} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 90):.1f} | "
                  f"{percentile(values, 99):.1f} | {max(values):.1f} |")
        worst = max(percentile(series_ms[name], 99) for name in ("own-write", "other-write"))
        print(f"\ntarget: p99 ≤ 100 ms for every computed answer: {'met' if worst <= 100 else 'MISSED'} "
              f"(worst p99 {worst:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
