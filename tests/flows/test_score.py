"""我的过程分, 申请豁免 and 团队健康度 through the real wire (R9, R11, R20), with the daily `r9-scores` job run
at the settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import SHANGHAI, SettableClock
from store.db import Database
from store.models import KeyAction, Opportunity, WeeklyScore
from tests.harness import Bot, running_bot, seed_customers, seed_team

LAST_WEEK = datetime(2026, 11, 23, 9, tzinfo=SHANGHAI)  # the harness clock is Monday 11-30 10:00


async def seed(db: Database, clock: SettableClock) -> dict[str, int]:
    """张三's deal has four key actions due last week: two done on time, one signed off late, one without its
    file. 李四 scored 96–99 in the three weeks before this one."""
    ids = await seed_team(db, clock)
    ids |= await seed_customers(db, clock, ids)
    async with db.transaction() as s:
        opp = (await s.scalars(select(Opportunity).where(Opportunity.owner_id == ids["zhangsan"]))).first()
        assert opp is not None
        due = LAST_WEEK + timedelta(days=2)
        for name, attached, signed in (("需求调研报告", True, due - timedelta(hours=1)),
                                       ("客户签字页", True, due),
                                       ("竞品分析提交", True, due + timedelta(hours=5)),
                                       ("POC测试报告归档", False, None)):
            s.add(KeyAction(opportunity_id=opp.id, name=name, due_at=due, created_at=LAST_WEEK,
                            attachment_path=f"/m/{name}" if attached else None,
                            attached_at=LAST_WEEK if attached else None,
                            signed_off_by=ids["zhangsan"] if signed else None, signed_off_at=signed))
        for weeks_back, score in ((1, "96.0"), (2, "99.0"), (3, "97.5")):
            monday = date(2026, 11, 30) - timedelta(weeks=weeks_back)
            s.add(WeeklyScore(user_id=ids["lisi"], week=f"2026-W{monday.isocalendar()[1]:02d}", week_start=monday,
                              due=1, done=1, on_time=1, need_attachment=1, with_attachment=1,
                              completion=Decimal(1), timeliness=Decimal(1), completeness=Decimal(1),
                              score=Decimal(score), computed_at=clock.now()))
    return ids


@pytest.fixture
async def bot(db_url: str, db: Database, clock: SettableClock) -> AsyncIterator[tuple[Bot, dict[str, int]]]:
    ids = await seed(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as b:
        yield b, ids



async def test_my_score_explains_parts_trend_and_fixes(bot: Any) -> None:
    """R9: 3 of 4 done (75 %), 2 on time (50 %), 3 of 4 with their file (75 %):
    100 × (0.4 × 0.75 + 0.3 × 0.5 + 0.3 × 0.75) = 67.5."""
    b, _ = bot
    assert "还没有你的过程分" in await b.ask("zhangsan", "我的过程分")
    await b.run_job("r9-scores")
    reply = await b.ask("zhangsan", "我的过程分")
    print(reply)
    lines = reply.splitlines()
    assert lines[0] == "**我的过程分 · 11-23～11-29**：**67.5** 分"
    assert lines[1:4] == ["· 完成率 75%（3/4）× 0.4", "· 及时率 50%（2/4）× 0.3", "· 完整率 75%（3/4）× 0.3"]
    assert "**提分建议**" in reply and "1. " in reply


async def test_the_job_makes_the_next_gates_key_actions_due(bot: Any, db: Database) -> None:
    """R9/R6: a deal in 触达 owes 首次需求确认 24 h after it entered (the SLA in [score] sla_hours)."""
    b, _ = bot
    await b.run_job("r9-scores")
    async with db.sessions() as s:
        rows = (await s.execute(
            select(KeyAction.name, KeyAction.due_at, Opportunity.stage_entered_at)
            .join(Opportunity, Opportunity.id == KeyAction.opportunity_id)
            .where(Opportunity.stage == "触达"))).all()
    assert {name for name, _, _ in rows} == {"首次需求确认"} and len(rows) == 2
    assert all(due == entered + timedelta(hours=24) for _, due, entered in rows)
    await b.run_job("r9-scores")  # idempotent
    async with db.sessions() as s:
        assert len((await s.scalars(select(KeyAction).where(KeyAction.name == "首次需求确认"))).all()) == 2


async def test_exemption_after_three_weeks_above_95_stops_the_question(bot: Any) -> None:
    """R11: 李四 (96, 99, 97.5) may exempt 时长 for next week; the check-in then does not ask for it. 张三 may
    not; core fields are never exempt."""
    b, _ = bot
    assert "豁免需要连续 3 周过程分高于 95" in await b.ask("zhangsan", "申请豁免 时长")
    assert "客户" in await b.ask("lisi", "申请豁免 客户")
    assert "可选：时长、地点、联系人、关键词" in await b.ask("lisi", "申请豁免")
    granted = await b.ask("lisi", "申请豁免 时长 地点")
    assert granted == "✅ 已为你豁免下周（2026-W50）的：时长、地点。客户和结论仍然必填。"
    b.clock.advance(timedelta(days=7))
    reply = await b.ask("lisi", "今日拜访完成 华远物流 客户认可方案")
    assert reply.startswith("✅ 已记录拜访：华远物流｜时长免填") and "位置" not in reply
    assert "多长时间" in await b.ask("zhangsan", "今日拜访完成 华远科技 客户认可方案")  # not exempt: asked


async def test_team_health_worst_first_and_only_for_managers(bot: Any) -> None:
    b, _ = bot
    await b.run_job("r9-scores")
    reply = await b.ask("wangjl", "团队健康度")
    print(reply)
    assert reply.splitlines()[0] == "**团队健康度 · 我的团队 · 11-23～11-29**（最低分在前）"
    assert reply.index("张三") < reply.index("李四")
    assert "| 张三 | 67.5 | 75% | 50% | 75% |" in reply
    assert "是给主管和销售运营看的团队视图" in await b.ask("zhangsan", "团队健康度")
