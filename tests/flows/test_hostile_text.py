"""Hostile text in every capture flow: stored verbatim (cleaned of controls) or refused with a clear
reply — never a broken query, a 500, or a half-written record."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import SettableClock
from store.models import Activity, Customer, InboxMessage
from tests.flows.test_checkin import said
from tests.harness import running_bot, seed_customers, seed_team

HOSTILE = [
    "'; DROP TABLE customers;--",
    "华远' OR '1'='1",
    "%",
    "_",
    "%_%",
    "\\%\\_",
    "华远\u200b\u202e\ufeff",  # zero-width and bidi controls (XML 1.0 cannot carry \x00-\x1f at all)
    "😀" * 300,
    "SELECT * FROM users WHERE name LIKE '%'",
    "<![CDATA[x]]>",
]


@pytest.mark.parametrize("text", HOSTILE)
async def test_hostile_customer_answers_and_conclusions(db_url: str, db: Any, clock: SettableClock,
                                                         text: str) -> None:
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "哪个客户" in await said(bot, "zhangsan", "拜访完了")
        reply = await said(bot, "zhangsan", text)  # as the customer's name: not found, or a question
        assert reply
        await said(bot, "zhangsan", "取消")
        reply = await said(bot, "zhangsan", f"今日拜访完成 宏达 1小时 {text}")
        assert reply
        async with bot.deps.db.sessions() as s:
            customers = await s.scalar(select(func.count()).select_from(Customer))
            statuses = set((await s.scalars(select(InboxMessage.status))).all())
        assert customers == 3 and statuses == {"done"}


async def test_new_customer_named_with_wildcards_is_stored_verbatim(db_url: str, db: Any,
                                                                     clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await said(bot, "zhangsan", "拜访完了 30分钟 聊得不错")
        await said(bot, "zhangsan", "新客户 %_' OR 1=1 --")
        assert "已记录拜访" in await said(bot, "zhangsan", "跳过")
        async with bot.deps.db.sessions() as s:
            names = set((await s.scalars(select(Customer.name))).all())
            [visit] = (await s.scalars(select(Activity))).all()
        assert "%_' OR 1=1 --" in names and visit.conclusion == "聊得不错"


async def test_ten_thousand_characters_get_a_clear_reply(db_url: str, db: Any, clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        for text in ("纪要：" + "预算" * 5000, "今日拜访完成 宏达 1小时 " + "好" * 10000, "啊" * 10000):
            reply = await said(bot, "zhangsan", text)
            assert "太长了" in reply or "没看懂" in reply
        async with bot.deps.db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Activity)) == 0


async def test_local_chat_with_lone_surrogates_and_controls(db_url: str, db: Any, clock: SettableClock) -> None:
    """The terminal channel can carry what WeCom cannot (lone surrogates, NUL): stored cleaned, flows work."""
    from bot.channels.local import LocalChat

    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        chat = LocalChat(bot.deps, "zhangsan")
        [reply] = await chat.say("今日拜访完成 宏达 1小时 客户\ud800认可\x00方案")
        assert "位置" in reply
        [reply] = await chat.say("跳过\udfff")
        assert "已记录拜访" in reply
        async with bot.deps.db.sessions() as s:
            [visit] = (await s.scalars(select(Activity))).all()
        assert visit.conclusion is not None and "\ud800" not in visit.conclusion and "认可" in visit.conclusion
