"""Understanding in the running app: customers added after start-up are known at once (the index and the
jieba dictionary follow the database), and what is not understood gets the closest examples."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.clock import SettableClock
from store.models import Activity, Customer, CustomerAlias
from tests.flows.test_checkin import said
from tests.harness import running_bot, seed_customers, seed_team


async def test_customers_added_while_running_are_understood(db_url: str, db: Any, clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "哪个客户" in await said(bot, "zhangsan", "拜访完成 澜起光电 1小时 对方要报价")
        await said(bot, "zhangsan", "取消")
        async with db.transaction() as s:  # e.g. an import or the API, in another process
            customer = Customer(name="宁波澜起光电股份有限公司", owner_id=ids["zhangsan"], created_at=clock.now())
            customer.aliases = [CustomerAlias(alias="澜起")]
            s.add(customer)
        reply = await said(bot, "zhangsan", "拜访完成 澜起光电 1小时 对方要报价")
        assert "位置" in reply  # customer, duration and conclusion understood: only the location is asked
        assert "已记录拜访：宁波澜起光电股份有限公司" in await said(bot, "zhangsan", "跳过")
        assert bot.deps.lexicon is not None and bot.deps.lexicon.tag_of("澜起") == "customer"
        async with bot.deps.db.sessions() as s:
            [visit] = (await s.scalars(select(Activity))).all()
        assert visit.conclusion == "对方要报价"


async def test_not_understood_offers_the_closest_examples(db_url: str, db: Any, clock: SettableClock) -> None:
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        reply = await said(bot, "zhangsan", "华远那个阶段能不能往前挪一下")
        assert "没看懂" in reply and "你是不是想说" in reply and "华远 进入 报价" in reply
