"""我的返点 / 返点明细 / 团队返点 / 冻结列表 / 解冻 through the real wire (R8, R7, R10, R20): signed callbacks in,
replies out through the fake WeCom, payments through the JSON API, the clock settable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import SHANGHAI, SettableClock
from store.db import Database
from store.models import AuditLog, BonusFreeze, Contract, Customer, OrgUnit, Payment, User
from tests.conftest import API_TOKEN
from tests.harness import Bot, running_bot, seed_team

ORG = {"org": {"finance": ("caiwu",), "sales_ops": ("yunying",)}}
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
SIGNED = datetime(2026, 11, 10, 11, 0, tzinfo=SHANGHAI)  # 20 days before the harness's Monday 11-30


async def seed(db: Database, clock: SettableClock) -> dict[str, int]:
    """张三: 华远 (¥100,000 signed 11-10, ¥40,000 paid), 远光 (¥80,000 signed in September, unpaid: frozen by
    R7 for November), 星河 (¥500,000 signed but no legal approval: counts nowhere). 李四: 蓝海 (¥60,000, paid).
    Another team's rep 赵六 with a contract; finance 小刘, sales ops 小周."""
    ids = await seed_team(db, clock)
    now = clock.now()
    async with db.transaction() as s:
        region = (await s.scalars(select(OrgUnit).where(OrgUnit.kind == "region"))).one()
        other = OrgUnit(kind="team", name="北京二组", parent_id=region.id, created_at=now)
        s.add(other)
        await s.flush()
        for userid, name, roles, team in (("caiwu", "财务小刘", ["finance"], None),
                                          ("yunying", "运营小周", ["sales_ops"], None),
                                          ("zhaoliu", "赵六", ["rep"], other.id)):
            user = User(name=name, wecom_userid=userid, roles=roles, team_id=team, created_at=now)
            s.add(user)
            await s.flush()
            ids[userid] = user.id

        async def contract(owner: str, customer: str, amount: str, signed: datetime, *, legal: bool = True,
                           external: str) -> int:
            c = Customer(name=customer, owner_id=ids[owner], industry="IT服务", created_at=now)
            s.add(c)
            await s.flush()
            row = Contract(customer_id=c.id, owner_id=ids[owner], amount=Decimal(amount), status="signed",
                           legal_approved_at=signed if legal else None, signed_at=signed, external_id=external,
                           created_at=now)
            s.add(row)
            await s.flush()
            ids[external] = row.id
            return row.id

        huayuan = await contract("zhangsan", "华远科技", "100000.00", SIGNED, external="HT-1")
        s.add(Payment(contract_id=huayuan, amount=Decimal("40000.00"), received_at=SIGNED + timedelta(days=5),
                      created_at=now))
        yuanguang = await contract("zhangsan", "远光集团", "80000.00", datetime(2026, 9, 20, 10, tzinfo=SHANGHAI),
                                   external="HT-2")
        await contract("zhangsan", "星河传媒", "500000.00", SIGNED, legal=False, external="HT-3")
        lanhai = await contract("lisi", "蓝海零售", "60000.00", SIGNED, external="HT-4")
        s.add(Payment(contract_id=lanhai, amount=Decimal("60000.00"), received_at=SIGNED + timedelta(days=3),
                      created_at=now))
        await contract("zhaoliu", "北方重工", "90000.00", SIGNED, external="HT-5")
        freeze = BonusFreeze(user_id=ids["zhangsan"], contract_id=yuanguang, month="2026-11",
                             reason="回款逾期 71 天", created_at=now)
        s.add(freeze)
        await s.flush()
        ids["freeze"] = freeze.id
    return ids


@pytest.fixture
async def bot(db_url: str, db: Database, clock: SettableClock) -> AsyncIterator[tuple[Bot, dict[str, int]]]:
    ids = await seed(db, clock)
    async with running_bot(db_url, clock, run_sender=False, overrides=ORG) as b:
        yield b, ids



async def pay(bot: Bot, contract: str, amount: str, at: datetime, external: str) -> None:
    """A payment arrives through the JSON API (finance's system), as in production."""
    resp = await bot.client.put("/api/v1/payments", headers=AUTH, json=[
        {"external_id": external, "contract": contract, "amount": amount, "received_at": at.isoformat()}])
    assert resp.status == 200, await resp.text()


async def test_my_rebate_before_and_after_a_payment(bot: Any) -> None:
    """R8: one message with the bar, earned, pending, receivables, payout date and best move; R10: the
    contract without legal approval (星河, ¥500,000) counts nowhere; once the rest of 华远 arrives within 30
    days the 大单快回款 rule applies to the whole contract, and the excess it adds in November is frozen by
    远光's overdue receivable (R7)."""
    b, _ = bot
    before = await b.ask("zhangsan", "我的返点")
    assert before.splitlines()[:4] == [
        "**我的返点 · IT 服务 · 2026-11**",
        "本期合格签约 ¥10.0万，下一档 ¥30.0万（1.5%）",  # 星河 would have lifted it past ¥30万
        "▓▓▓░░░░░░░ 33%",
        "✅ 已到账返点：本期 ¥400.00，累计 ¥400.00",  # 1 % of the ¥40,000 received
    ]
    assert "⏳ 待回款返点：¥1,400.00" in before  # 1 % of 华远's ¥60,000 + 远光's ¥80,000
    assert "📥 应收未回：¥14.0万" in before and "星河" not in before
    assert "📅 预计发放：12-15 发 ¥400.00" in before
    assert "💡 优先催收「华远科技」¥60,000.00：到账后多得 ¥1,400.00（满足 大单快回款）" in before

    await pay(b, "HT-1", "60000.00", b.clock.now() - timedelta(hours=1), "P-2")
    after = await b.ask("zhangsan", "我的返点")
    assert "✅ 已到账返点：本期 ¥1,800.00，累计 ¥1,800.00" in after  # (1 % + 0.8 %) × ¥100,000
    assert "🧊 冻结 ¥800.00（2026-11）：远光集团 回款逾期 71 天" in after  # the excess over the base rate
    assert "📅 预计发放：12-15 发 ¥1,000.00（另有 ¥800.00 冻结）" in after
    assert "💡 优先催收「远光集团」¥80,000.00：到账后多得 ¥1,600.00" in after  # its rebate + the freeze


@pytest.mark.parametrize("text", ["返点多少", "我的提成", "my rebate", "我的返点？", "提成怎么样了"])
async def test_rebate_variants(bot: Any, text: str) -> None:
    b, _ = bot
    assert (await b.ask("zhangsan", text)).startswith("**我的返点 · IT 服务")


async def test_rebate_detail_names_the_rule_per_contract(bot: Any) -> None:
    b, _ = bot
    await pay(b, "HT-1", "60000.00", b.clock.now() - timedelta(hours=1), "P-2")
    detail = await b.ask("zhangsan", "返点明细")
    assert detail.startswith("**返点明细 · IT 服务**（2 个合同）")
    assert "| 华远科技 | ¥10.0万 | 100% | 1.8% | ¥1,800.00 | ¥0.00 |" in detail
    assert "华远科技：第1档 1% + 大单快回款" in detail and "星河" not in detail


async def test_a_reply_is_cached_until_a_write(bot: Any) -> None:
    """R20: the same question twice is served from the cache; any write (here a payment through the API)
    makes the next answer fresh; and after max_staleness_s it is recomputed anyway."""
    b, _ = bot
    views = b.deps.views
    first = await b.ask("zhangsan", "我的返点")
    hits = views.hits
    assert await b.ask("zhangsan", "我的返点") == first and views.hits == hits + 1
    await pay(b, "HT-1", "10000.00", b.clock.now() - timedelta(hours=1), "P-3")
    assert await b.ask("zhangsan", "我的返点") != first


async def test_team_rebate_only_for_those_who_may(bot: Any) -> None:
    """A rep is refused; 王经理 sees his two reps, not 赵六 of another team; finance sees everyone."""
    b, _ = bot
    assert "只对主管、财务和销售运营开放" in await b.ask("zhangsan", "团队返点")
    team = await b.ask("wangjl", "团队返点")
    assert "张三" in team and "李四" in team and "赵六" not in team
    everyone = await b.ask("caiwu", "团队返点")
    assert "张三" in everyone and "赵六" in everyone


async def test_finance_releases_a_freeze_and_the_rep_is_told(bot: Any, db: Database) -> None:
    """R7: only finance releases; the release is audited, the rep is told, 我的返点 no longer shows it."""
    b, ids = bot
    await pay(b, "HT-1", "60000.00", b.clock.now() - timedelta(hours=1), "P-2")
    assert "解冻只能由财务操作" in await b.ask("zhangsan", f"解冻 #{ids['freeze']}")
    assert "解冻只能由财务操作" in await b.ask("wangjl", f"解冻 #{ids['freeze']}")
    listing = await b.ask("caiwu", "冻结列表")
    assert f"#{ids['freeze']} 张三｜远光集团｜2026-11｜回款逾期 71 天" in listing
    assert "没有找到冻结中的「#999」" in await b.ask("caiwu", "解冻 #999")
    done = await b.ask("caiwu", f"解冻 #{ids['freeze']}")
    assert done.startswith("已解冻 1 笔") and "张三" in done
    assert b.texts("zhangsan")[-1] == "🔓 财务已解冻你 2026-11 的超额奖金（远光集团）。"
    mine = await b.ask("zhangsan", "我的返点")
    assert "🧊" not in mine and "📅 预计发放：12-15 发 ¥1,800.00" in mine
    assert "没有找到冻结中的" in await b.ask("caiwu", f"解冻 #{ids['freeze']}")  # once
    async with db.sessions() as s:
        freeze = await s.get(BonusFreeze, ids["freeze"])
        assert freeze is not None and freeze.released_by == ids["caiwu"]
        audit = (await s.scalars(select(AuditLog).where(AuditLog.action == "release_bonus_freeze"))).all()
        assert [a.subject_id for a in audit] == [ids["freeze"]]


async def test_a_rep_sees_only_their_own_freezes(bot: Any) -> None:
    b, _ = bot
    assert "张三" in await b.ask("zhangsan", "冻结列表")
    assert "现在没有冻结中的奖金" in await b.ask("lisi", "冻结列表")


async def test_another_process_write_is_seen_within_three_minutes(bot: Any, db: Database) -> None:
    """R20: a write this process did not make (another server, an admin's SQL) cannot clear the view cache: the
    cached answer is served until it is max_staleness_s (180 s) old, and never after."""
    b, ids = bot
    first = await b.ask("zhangsan", "我的返点")
    async with db.transaction() as s:  # behind the app's back
        s.add(Payment(contract_id=ids["HT-1"], amount=Decimal("60000.00"),
                      received_at=b.clock.now() - timedelta(hours=1), created_at=b.clock.now()))
    b.clock.advance(timedelta(seconds=170))
    assert await b.ask("zhangsan", "我的返点") == first  # within the bound: the cached text
    b.clock.advance(timedelta(seconds=11))
    fresh = await b.ask("zhangsan", "我的返点")
    assert fresh != first and "累计 ¥1,800.00" in fresh
