"""R20 manager views through the real wire: 漏斗 with drill-down, 4小时率; a rep is refused, a manager sees
only their own teams, sales ops everything (the full actor × command matrix is in test_access.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.clock import SettableClock
from store.db import Database
from tests.flows.org12 import ORG, Company, seed_company
from tests.harness import Bot, running_bot


@pytest.fixture
async def company(db_url: str, db: Database, clock: SettableClock) -> AsyncIterator[tuple[Bot, Company]]:
    co = await seed_company(db, clock)
    async with running_bot(db_url, clock, run_sender=False, overrides=ORG) as b:
        yield b, co



async def test_funnel_of_my_team_by_rep(company: Any) -> None:
    b, _ = company
    reply = await b.ask("wangjl", "漏斗")
    print(reply)
    lines = reply.splitlines()
    assert lines[0] == "**漏斗 · 我的团队**（进行中 12 个，¥31.2万）"
    assert "| 需求诊断 | 4 | ¥10.0万 |" in reply and "| 方案呈现 | 4 | ¥10.4万 |" in reply
    assert "本月新签（已签约且法务审批）：4 个，¥20.6万" in reply
    assert "**按销售**" in reply and "| 赵六 | 3 | ¥12.3万 |" in reply
    assert "孙七" not in reply and "杭州二组" not in reply


async def test_region_drills_down_to_teams_then_reps(company: Any) -> None:
    b, _ = company
    region = await b.ask("yunying", "漏斗 华东")
    assert region.startswith("**漏斗 · 华东**（进行中 24 个")
    assert "**按团队**" in region and "| 杭州二组 | 12 |" in region and "| 上海一组 | 12 |" in region
    team = await b.ask("yunying", "漏斗 杭州二组")
    assert "**按销售**" in team and "孙七" in team and "张三" not in team
    person = await b.ask("yunying", "漏斗 孙七")
    assert person.startswith("**漏斗 · 孙七**（进行中 3 个") and "按" not in person


async def test_a_manager_cannot_look_into_another_team(company: Any) -> None:
    b, _ = company
    for target in ("杭州二组", "孙七", "华东", "不存在的组"):
        assert await b.ask("wangjl", f"漏斗 {target}") == (
            f"没有找到你可以查看的「{target}」。可以发区域、团队或销售的名字，例如「漏斗 华东」。")


async def test_a_rep_is_refused_politely(company: Any) -> None:
    """A rep asking a team view is refused; a bare "漏斗" from a rep is their own pipeline (我的商机)."""
    b, _ = company
    for text in ("漏斗 华东", "漏斗 上海一组", "4小时率", "跃迁率", "团队健康度"):
        reply = await b.ask("zhangsan", text)
        assert "是给主管和销售运营看的团队视图" in reply and "李四" not in reply
    own = await b.ask("zhangsan", "漏斗")
    assert own.startswith("**我的商机（3 个）**") and "张三的客户1号" in own and "李四" not in own


async def test_golden_rate_per_day_and_team(company: Any) -> None:
    """R2: every rep has two leads yesterday, one contacted after 1 h (on time), one after 6 h (late)."""
    b, _ = company
    mine = await b.ask("wangjl", "4小时率")
    print(mine)
    assert mine.startswith("**4小时响应率 · 我的团队**（目标 85%）")
    assert "| 8 | 4 | 50% ⚠️ |" in mine
    everyone = await b.ask("yunying", "4小时率")
    assert "| 16 | 8 | 50% ⚠️ |" in everyone and "**按团队（近 7 天）**" in everyone


async def test_transition_rates_per_stage_and_rep(company: Any, db: Database) -> None:
    """R12 / R20: last week every rep had one deal past 异议处理's limit that did not move (0/1 each); 李四
    also moved a deal out of 方案呈现 after its deadline (1/1)."""
    from datetime import datetime

    from bot.clock import SHANGHAI
    from store.models import Customer, Opportunity, StageMove

    b, co = company
    created = datetime(2026, 11, 25, 10, tzinfo=SHANGHAI)
    moved = datetime(2026, 11, 29, 12, tzinfo=SHANGHAI)
    async with db.transaction() as s:
        customer = Customer(name="李四的新客户", owner_id=co.ids["lisi"], created_at=created)
        s.add(customer)
        await s.flush()
        opp = Opportunity(name="推进中的项目", customer_id=customer.id, owner_id=co.ids["lisi"], stage="异议处理",
                          stage_entered_at=moved, last_progress_at=moved, created_at=created)
        s.add(opp)
        await s.flush()
        s.add(StageMove(opportunity_id=opp.id, from_stage="方案呈现", to_stage="异议处理", at=moved,
                        actor_id=co.ids["lisi"], forced=False))
    reply = await b.ask("wangjl", "跃迁率")
    print(reply)
    assert reply.startswith("**阶段跃迁率 · 我的团队**（目标 65%")
    assert "| 方案呈现 | 100% 1/1 | — |" in reply
    assert "| 异议处理 | 0% ⚠️ 0/4 | — |" in reply
    assert "| 合计 | 20% ⚠️ 1/5 | — |" in reply
    assert "| 李四 | 50% ⚠️ 1/2 |" in reply and "孙七" not in reply
    assert "是给主管和销售运营看的" in await b.ask("lisi", "跃迁率")


async def test_a_hostile_long_command_gets_a_plain_answer(company: Any) -> None:
    """A 12,000-character message that starts like a view command is no command (commands are short: the
    patterns check the length first, so it cannot make them backtrack) and gets the ordinary answer."""
    b, _ = company
    for start in ("漏斗 a", "4小时率 a", "团队健康度 a", "解冻 a", "申请豁免 a"):
        reply = await b.ask("wangjl", start + " " * 6000 + "?" * 6000 + "x")
        assert not reply.startswith(("**", "没有找到你可以查看的", "解冻", "豁免", "✅")), reply[:40]
