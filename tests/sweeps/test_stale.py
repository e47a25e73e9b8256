"""R3 stale follow-up through the real app and fake WeCom: one nudge per working day (none on Sunday, night
ones at 09:00), the manager told once after the 3rd ignored nudge, activity recorded through the wire ends
it — even a nudge already written at night is then not sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import SHANGHAI, SettableClock
from store.db import Database
from store.models import Escalation, Notice, Opportunity
from tests.flows.test_checkin import said
from tests.harness import Bot, running_bot, seed_customers, seed_team

NUDGE = "没有跟进记录"
TOLD = "已提醒 3 次仍未处理"
HUAYUAN_OPP = "上海华远科技有限公司项目"


async def setup(db: Database, clock: SettableClock, *, keep: tuple[str, ...] = ("huayuan",)) -> dict[str, int]:
    """The team and its customers; only the opportunities of `keep` stay open (the others are won)."""
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with db.transaction() as s:
        for opp in (await s.scalars(select(Opportunity))).all():
            if opp.customer_id not in {customers[k] for k in keep}:
                opp.status = "won"
    return customers


def _bot(db_url: str, clock: SettableClock, **kw: Any) -> Any:
    return running_bot(db_url, clock, run_sender=False, **kw)


async def tick(bot: Bot) -> int:
    """The R3 sweep, then the notices (what the `sweeps` job does for this rule), at the clock's now."""
    fired = await bot.run_job("r3-stale")
    await bot.run_job("notices")
    return fired


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    at = start
    while at <= end:
        yield at
        at += timedelta(hours=1)


def nudges(bot: Bot, userid: str, marker: str = NUDGE) -> list[datetime]:
    """When each R3 message reached a person (Asia/Shanghai)."""
    return [m.at.astimezone(SHANGHAI) for m in bot.fake.delivered(userid) if marker in (m.content or "")]


async def visit(bot: Bot, userid: str, customer: str) -> None:
    """A visit recorded through the wire: a location share, then the one-message check-in."""
    await bot.send(bot.wire.location(userid, 31.2304, 121.4737, "客户现场"))
    await bot.settle()
    assert "已记录拜访" in await said(bot, userid, f"今日拜访完成 {customer} 1小时 客户认可方案")


async def test_r3_nudges_once_per_working_day_then_tells_the_manager_once(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R3: last progress Monday 10:00. Thursday 09:59 (71:59) nothing; 10:01 one nudge to the owner only;
    then one per working day — an evening run counts for the next working day and arrives at 09:00, Sunday
    none; the 4th working day's run finds 3 ignored nudges and tells the manager, once. A visit through the
    wire ends it: nothing for the next 72 h, then a new spell starts from one nudge (manager not told)."""
    await setup(db, clock)
    progress = clock.now()  # Monday 2026-11-30 10:00
    async with _bot(db_url, clock) as bot:
        clock.set(progress + timedelta(hours=71, minutes=59))
        assert await tick(bot) == 0
        assert bot.fake.delivered("zhangsan") == []
        clock.set(progress + timedelta(hours=72, minutes=1))
        assert await tick(bot) == 1
        [first] = bot.texts("zhangsan")
        assert HUAYUAN_OPP in first and "已 3 天没有跟进记录" in first and "上海华远科技有限公司" in first
        assert bot.fake.delivered("wangjl") == [] and bot.fake.delivered("lisi") == []
        assert await tick(bot) == 0  # rerun: nothing twice

        # Hourly until Monday 19:00: Friday, Saturday, Monday — never Sunday, always in working hours.
        fired = 0
        for at in hours(datetime(2026, 12, 3, 11, 0, tzinfo=SHANGHAI), datetime(2026, 12, 7, 19, 0, tzinfo=SHANGHAI)):
            clock.set(at)
            fired += await tick(bot)
        assert fired == 3
        times = nudges(bot, "zhangsan")
        assert [t.date() for t in times] == [date(2026, 12, 3), date(2026, 12, 4), date(2026, 12, 5),
                                             date(2026, 12, 7)]
        assert all(9 <= t.hour < 20 for t in times) and all(t.isoweekday() != 7 for t in times)
        assert times[1].hour == 9 and times[3].hour == 9  # written the evening before, held until 09:00
        [told] = nudges(bot, "wangjl", TOLD)
        assert told == datetime(2026, 12, 7, 9, 0, tzinfo=SHANGHAI)  # written Saturday 20:00 with Monday's nudge
        [text] = [m for m in bot.texts("wangjl") if TOLD in m]
        assert HUAYUAN_OPP in text and "负责人 张三" in text
        assert bot.fake.delivered("lisi") == []

        # Fixed: a visit Monday 12:00 through the wire. No nudge for 72 h, and the manager is not re-told.
        clock.set(datetime(2026, 12, 7, 12, 0, tzinfo=SHANGHAI))
        await visit(bot, "zhangsan", "华远科技")
        for at in hours(datetime(2026, 12, 7, 13, 0, tzinfo=SHANGHAI), datetime(2026, 12, 10, 12, 0, tzinfo=SHANGHAI)):
            clock.set(at)
            assert await tick(bot) == 0
        clock.set(datetime(2026, 12, 10, 12, 1, tzinfo=SHANGHAI))  # 72 h 1 min after the visit: a new spell
        assert await tick(bot) == 1
        assert len(nudges(bot, "zhangsan")) == 5
        assert len(nudges(bot, "wangjl", TOLD)) == 1
    async with db.sessions() as s:
        rules = [e.rule for e in (await s.scalars(select(Escalation).order_by(Escalation.id))).all()]
    assert rules == ["R3", "R3", "R3", "R3", "R3M", "R3"]


async def test_r3_a_night_nudge_is_withdrawn_when_the_rep_acts_before_it_arrives(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R3 + R18: stale at Saturday 22:00 → a nudge for Monday is written, held; the rep records a visit on
    Sunday → Monday 09:00 nothing arrives (the notice is withdrawn, not sent)."""
    customers = await setup(db, clock)
    async with db.transaction() as s:
        opp = (await s.scalars(select(Opportunity).where(Opportunity.customer_id == customers["huayuan"]))).one()
        opp.last_progress_at = datetime(2026, 12, 2, 22, 0, tzinfo=SHANGHAI)
    async with _bot(db_url, clock) as bot:
        clock.set(datetime(2026, 12, 5, 21, 59, tzinfo=SHANGHAI))
        assert await tick(bot) == 0
        clock.set(datetime(2026, 12, 5, 22, 1, tzinfo=SHANGHAI))
        assert await tick(bot) == 1  # for Monday, held
        assert nudges(bot, "zhangsan") == []
        clock.set(datetime(2026, 12, 6, 11, 0, tzinfo=SHANGHAI))
        await visit(bot, "zhangsan", "华远")
        for at in hours(datetime(2026, 12, 7, 8, 0, tzinfo=SHANGHAI), datetime(2026, 12, 7, 12, 0, tzinfo=SHANGHAI)):
            clock.set(at)
            assert await tick(bot) == 0
        assert nudges(bot, "zhangsan") == []
    async with db.sessions() as s:
        assert [n.status for n in (await s.scalars(select(Notice))).all()] == ["withdrawn"]


async def test_r3_two_sweeps_at_once_nudge_each_owner_once_as_one_digest(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """Two app instances run the R3 sweep concurrently: 张三's two stale opportunities reach him as one
    digest, 李四's one as one message; nothing twice."""
    from jobs.sweeps.stale import run

    await setup(db, clock, keep=("huayuan", "hongda", "hylogistics"))
    clock.advance(timedelta(hours=73))
    async with _bot(db_url, clock) as one, _bot(db_url, clock, fake=one.fake) as two:
        counts = await asyncio.gather(run(one.deps, clock.now()), run(two.deps, clock.now()),
                                      run(one.deps, clock.now()), run(two.deps, clock.now()))
        assert sum(counts) == 3
        await one.run_job("notices")
        await two.run_job("notices")
        [digest] = one.texts("zhangsan")
        assert digest.startswith("📋 你有 2 条提醒") and HUAYUAN_OPP in digest and "宏达零售项目" in digest
        [single] = one.texts("lisi")
        assert "华远物流项目" in single
        assert one.texts("wangjl") == []
