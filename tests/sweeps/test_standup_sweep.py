"""R16 Monday stand-up sweeps through the real app and fake WeCom: the 09:00 prompt to each active rep once,
answers through the wire, the team table to the manager at 10:00 with who has not answered — or as soon as
everyone answered — never twice, and an answer after the table sends no second one."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import SHANGHAI, SettableClock
from bot.rules.calendar import WorkCalendar
from bot.rules.standup import standup_day
from handlers.standup import PROMPT
from store.db import Database
from store.models import Escalation, StandupAnswer, User
from tests.flows.test_checkin import said
from tests.harness import Bot, running_bot, seed_customers, seed_team

MONDAY = date(2026, 12, 7)
TABLE = "周会汇总"


def at(hour: int, minute: int = 0, day: date = MONDAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


async def setup(db: Database, clock: SettableClock) -> dict[str, int]:
    """The team (张三, 李四 and 王经理) seeded on Monday 08:00, plus a rep who has left (赵六, inactive)."""
    clock.set(at(8))
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with db.transaction() as s:
        zhangsan = await s.get(User, ids["zhangsan"])
        assert zhangsan is not None
        s.add(User(name="赵六", wecom_userid="zhaoliu", roles=["rep"], team_id=zhangsan.team_id, active=False,
                   created_at=clock.now()))
    return ids


def _bot(db_url: str, clock: SettableClock, **kw: Any) -> Any:
    return running_bot(db_url, clock, run_sender=False, **kw)


async def sweeps_at(bot: Bot, when: datetime) -> None:
    bot.clock.set(when)
    await bot.run_job("sweeps")


def prompts(bot: Bot, userid: str) -> list[str]:
    return [t for t in bot.texts(userid) if t == PROMPT]


def tables(bot: Bot, userid: str = "wangjl") -> list[str]:
    return [t for t in bot.texts(userid) if TABLE in t]


async def escalations(db: Database, rule: str) -> list[Escalation]:
    async with db.sessions() as s:
        return list((await s.scalars(select(Escalation).where(Escalation.rule == rule))).all())


async def test_r16_prompt_at_nine_once_then_the_table_at_ten_names_who_did_not_answer(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R16: 08:59 nothing; 09:00 the prompt job asks 张三 and 李四 once (not the manager, not 赵六 who left);
    张三 answers at 09:45 with plain text (the prompt's state lasts until the table, past the usual 30 min);
    09:59 no table; 10:00 one table to 王经理 with 张三's stuck / support / date and 李四 as not answered;
    李四 answering at 10:30 sends no second table."""
    ids = await setup(db, clock)
    async with _bot(db_url, clock) as bot:
        await sweeps_at(bot, at(8, 59))
        assert prompts(bot, "zhangsan") == [] and prompts(bot, "lisi") == []
        clock.set(at(9))
        assert await bot.run_job("r16-standup-prompt") == 2  # the Monday cron job
        await bot.run_job("notices")
        assert len(prompts(bot, "zhangsan")) == 1 and len(prompts(bot, "lisi")) == 1
        assert bot.texts("wangjl") == [] and bot.fake.delivered("zhaoliu") == []
        for minute in (1, 30):  # reruns, and the every-minute sweeps: nothing twice
            await sweeps_at(bot, at(9, minute))
            assert await bot.run_job("r16-standup-prompt") == 0
        assert len(prompts(bot, "zhangsan")) == 1 and len(prompts(bot, "lisi")) == 1

        clock.set(at(9, 45))
        assert "本周周会已记录" in await said(bot, "zhangsan", "华远卡在预算，需要王经理陪访，12月10日前解决")
        await sweeps_at(bot, at(9, 59))
        assert tables(bot) == []
        await sweeps_at(bot, at(10))
        [table] = tables(bot)
        assert table.startswith("📋 上海一组 周会汇总（12月7日这周）：1/2 人已回复")
        assert "✅ 张三" in table and "卡点：华远卡在预算" in table and "需要支持：需要王经理陪访" in table
        assert "预计解决：12月10日（周四）" in table and table.endswith("⏳ 未回复：李四")
        assert "赵六" not in table
        assert bot.fake.delivered("wangjl")[0].at == at(10)
        assert tables(bot, "zhangsan") == [] and tables(bot, "lisi") == []
        await sweeps_at(bot, at(10, 1))
        assert await bot.run_job("r16-standup-table") == 0

        clock.set(at(10, 30))  # the prompt's state expired with the table: 李四 writes 周会 himself
        assert "本周周会已记录" in await said(bot, "lisi", "周会 华远物流卡在比价，需要王经理出面，12月11日前解决")
        await sweeps_at(bot, at(10, 31))
        await sweeps_at(bot, at(15))
        assert len(tables(bot)) == 1
    assert len(await escalations(db, "R16P")) == 2 and len(await escalations(db, "R16T")) == 1
    async with db.sessions() as s:
        rows = {a.user_id: a for a in (await s.scalars(select(StandupAnswer))).all()}
    assert rows[ids["zhangsan"]].prompted and rows[ids["zhangsan"]].week == MONDAY
    assert not rows[ids["lisi"]].prompted


async def test_r16_the_table_goes_as_soon_as_everyone_answered_and_never_twice(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R16: both reps answer by 09:20 → the last answer fires the table (delivered by the next notices run,
    well before 10:00: 2/2, nobody missing); 10:00 sends nothing more, nor does 张三 changing his answer."""
    await setup(db, clock)
    async with _bot(db_url, clock) as bot:
        await sweeps_at(bot, at(9))
        clock.set(at(9, 10))
        assert "本周周会已记录" in await said(bot, "zhangsan", "1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决")
        assert await escalations(db, "R16T") == []
        clock.set(at(9, 20))
        assert "本周周会已记录" in await said(bot, "lisi", "本周没有卡点")
        assert len(await escalations(db, "R16T")) == 1  # fired by the answer, in its transaction
        assert tables(bot) == []
        await bot.run_job("notices")
        [table] = tables(bot)
        assert "2/2 人已回复" in table and "✅ 李四：本周没有卡点" in table and "未回复" not in table
        assert bot.fake.delivered("wangjl")[0].at == at(9, 20)
        await sweeps_at(bot, at(10))
        clock.set(at(10, 5))
        assert "本周周会已更新" in await said(bot, "zhangsan", "周会 华远卡在预算，需要王经理陪访，12月12日前解决")
        await sweeps_at(bot, at(10, 6))
        assert len(tables(bot)) == 1


async def test_r16_two_last_answers_at_once_still_send_the_table_once(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R16: 张三 and 李四 answer at the same moment (two conversations processed concurrently; on PostgreSQL two
    transactions): each counts the team under the team's lock, so the second sees the first — one table."""
    await setup(db, clock)
    async with _bot(db_url, clock) as bot:
        await sweeps_at(bot, at(9))
        clock.set(at(9, 5))
        await bot.say("zhangsan", "华远卡在预算，需要王经理陪访，12月10日前解决")
        await bot.say("lisi", "华远物流卡在比价，需要王经理出面，12月11日前解决")
        await bot.settle()
        assert len(await escalations(db, "R16T")) == 1
        await sweeps_at(bot, at(9, 6))
        [table] = tables(bot)
        assert "2/2 人已回复" in table
        await sweeps_at(bot, at(10))
        assert len(tables(bot)) == 1


async def test_r16_a_late_start_still_asks_and_gives_reps_their_hour(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R16 after downtime: the server comes back at 09:30 → the prompt goes then (its state lasts an hour) and
    the table waits until 10:30; a server that only comes back after 10:00 asks nobody and sends no table."""
    await setup(db, clock)
    async with _bot(db_url, clock) as bot:
        await sweeps_at(bot, at(9, 30))
        assert len(prompts(bot, "zhangsan")) == 1 and len(prompts(bot, "lisi")) == 1
        await sweeps_at(bot, at(10))
        assert tables(bot) == []
        clock.set(at(10, 20))  # 50 minutes after the prompt: plain text is still the answer
        assert "本周周会已记录" in await said(bot, "lisi", "华远物流卡在比价，需要王经理出面，12月11日前解决")
        await sweeps_at(bot, at(10, 29))
        assert tables(bot) == []
        await sweeps_at(bot, at(10, 30))
        [table] = tables(bot)
        assert "1/2 人已回复" in table and "未回复：张三" in table

    next_monday = MONDAY + timedelta(days=7)
    async with _bot(db_url, clock) as bot:  # down all through the next Monday's prompt hour
        for when in (at(10, 0, next_monday), at(10, 1, next_monday), at(15, 0, next_monday)):
            await sweeps_at(bot, when)
        assert len(prompts(bot, "zhangsan")) == 0 and tables(bot) == []


def test_r16_schedule_follows_the_working_calendar() -> None:
    """R16 + R18: the default Monday 09:00/10:00; a Monday holiday moves both to Tuesday (same gap); a week
    of holidays has no stand-up; another weekday and times from config."""
    times = {"prompt_at": time(9), "table_at": time(10)}
    default = WorkCalendar.parse("09:00", "20:00", range(1, 7))
    day = standup_day(at(15, 0, date(2026, 12, 10)), weekday=1, calendar=default, **times)
    assert day is not None and day.week == MONDAY and day.prompt == at(9) and day.table == at(10)
    assert day.closes == at(0, 0, date(2026, 12, 8))
    holiday = WorkCalendar.parse("09:00", "20:00", range(1, 7), holidays=["2026-12-07"])
    day = standup_day(at(8), weekday=1, calendar=holiday, **times)
    assert day is not None and day.prompt == at(9, 0, date(2026, 12, 8)) and day.table == at(10, 0, date(2026, 12, 8))
    week_off = WorkCalendar.parse("09:00", "20:00", range(1, 7),
                                  holidays=[f"2026-12-{d:02d}" for d in range(7, 13)])
    assert standup_day(at(8), weekday=1, calendar=week_off, **times) is None
    day = standup_day(at(8), weekday=3, calendar=default, prompt_at=time(8, 30), table_at=time(11))
    assert day is not None and day.prompt == at(9, 0, date(2026, 12, 9)) and day.table == at(11, 30, date(2026, 12, 9))
