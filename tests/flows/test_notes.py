"""R15 meeting notes through the real wire: keywords and tags, length, customer link, voice notes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import SettableClock
from store.models import Activity
from tests.flows.test_checkin import said
from tests.harness import running_bot, seed_customers, seed_team

NOTE = ("纪要：和华远王总聊了，预算50万左右，目前用的是用友，痛点是对账难、人工统计出错，"
        "希望月底前上线，竞品还有金蝶在跟")


async def notes(bot: Any) -> list[Activity]:
    async with bot.deps.db.sessions() as s:
        return list((await s.scalars(select(Activity).where(Activity.kind == "meeting").order_by(Activity.id))).all())


async def test_note_in_one_message_keeps_keywords_tags_and_length(db_url: str, db: Any, clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        reply = await said(bot, "zhangsan", NOTE)
        assert "纪要已记下：上海华远科技有限公司" in reply and "竞品：" in reply and "用友" in reply
        [note] = await notes(bot)
        body = NOTE.removeprefix("纪要：")
        assert note.note == body and note.note_chars == len(body) and note.customer_id == customers["huayuan"]
        assert note.opportunity_id is not None
        assert {"用友", "金蝶"} <= set(note.tags["competitor"]) and "王总" in note.tags["decision_maker"]
        assert "预算" in note.tags["budget"] and note.keywords


async def test_note_without_customer_goes_to_the_recent_visit_or_asks(db_url: str, db: Any,
                                                                      clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "哪个客户" in await said(bot, "zhangsan", "会议纪要 对方关心交付周期")
        assert "纪要已记下：宏达零售" in await said(bot, "zhangsan", "宏达")
        await said(bot, "zhangsan", "今日拜访完成 华远 1小时 客户认可方案")
        await said(bot, "zhangsan", "跳过")
        clock.advance(timedelta(minutes=30))
        assert "纪要已记下：上海华远科技有限公司" in await said(bot, "zhangsan", "记录一下：下次带上技术同事")
        assert [n.customer_id for n in await notes(bot)] == [customers["hongda"], customers["huayuan"]]


async def test_voice_recognition_is_a_note(db_url: str, db: Any, clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.send(bot.wire.voice("zhangsan", recognition="宏达零售的李经理说预算还没批下来"))
        await bot.settle()
        assert "纪要已记下：宏达零售" in (bot.fake.delivered("zhangsan")[-1].content or "")
        [note] = await notes(bot)
        assert note.note == "宏达零售的李经理说预算还没批下来"


async def test_too_long_note_is_refused_and_stores_nothing(db_url: str, db: Any, clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "太长了" in await said(bot, "zhangsan", "纪要：" + "很" * 6000)
        assert await notes(bot) == []
