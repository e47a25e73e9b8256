"""R2 golden 4 hours through the real app and fake WeCom: from 09:30 (Asia/Shanghai) yesterday's responded /
new leads per region; below 85% → one 电话复盘 task card to that region's manager listing the leads that
missed, once per (region, day); a healthy region, an on-time day or a rerun sends nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import SHANGHAI, SettableClock
from store.db import Database
from store.models import Escalation, Lead, OrgUnit, SweepPeriod, User
from tests.harness import running_bot, seed_team

DAY = datetime(2026, 12, 1, 0, 0, tzinfo=SHANGHAI)  # Tuesday: the day under review
REVIEW = datetime(2026, 12, 2, 9, 30, tzinfo=SHANGHAI)  # Wednesday 09:30


async def seed_regions(db: Database, clock: SettableClock) -> dict[str, int]:
    """华东 (王经理 manages it, from seed_team) and 华北 (赵经理); sales ops 小周."""
    ids = await seed_team(db, clock)
    now = clock.now()
    async with db.transaction() as s:
        east = (await s.scalars(select(OrgUnit).where(OrgUnit.kind == "region"))).one()
        east.manager_id = ids["wangjl"]
        zhao = User(name="赵经理", wecom_userid="zhaojl", roles=["manager"], created_at=now)
        s.add(zhao)
        s.add(User(name="运营小周", wecom_userid="ops1", roles=["sales_ops"], created_at=now))
        await s.flush()
        north = OrgUnit(kind="region", name="华北", manager_id=zhao.id, created_at=now)
        s.add(north)
        await s.flush()
        return {**ids, "east": east.id, "north": north.id}


async def add_leads(db: Database, region_id: int | None, day: datetime, *, on_time: int, late: int = 0,
                    unassigned: int = 0, contact_after: timedelta = timedelta(hours=4)) -> None:
    """Leads created at 10:00, 10:01, … of `day`: on time (contact exactly `contact_after`), late (5 h) or
    never assigned."""
    async with db.transaction() as s:
        kinds = ["ok"] * on_time + ["late"] * late + ["none"] * unassigned
        for i, kind in enumerate(kinds):
            created = day + timedelta(hours=10, minutes=i)
            assigned = None if kind == "none" else created + timedelta(minutes=20)
            contact = {"ok": created + contact_after, "late": created + timedelta(hours=5), "none": None}[kind]
            s.add(Lead(title=f"{kind}线索{i:02d}", region_id=region_id, created_at=created, assigned_at=assigned,
                       first_contact_at=contact))


def _bot(db_url: str, clock: SettableClock) -> Any:
    return running_bot(db_url, clock, run_sender=False, overrides={"org": {"sales_ops": ("ops1",)}})


def r2_cards(bot: Any, userid: str) -> list[dict[str, Any]]:
    cards = [m.body.get("template_card") or {} for m in bot.fake.delivered(userid)]
    return [c for c in cards if str(c.get("task_id", "")).startswith("r2-")]


async def test_r2_phone_review_card_to_the_region_manager_once(db_url: str, db: Database,
                                                              clock: SettableClock) -> None:
    """华东: 8 of 10 on time (80% < 85%) → at 09:30 next day one card to 王经理 naming the 2 misses; 华北 (100%)
    → nothing to 赵经理; before 09:30 nothing; rerun nothing; the next day all on time → nothing more."""
    clock.set(DAY)
    ids = await seed_regions(db, clock)
    await add_leads(db, ids["east"], DAY, on_time=8, late=1, unassigned=1)
    await add_leads(db, ids["north"], DAY, on_time=3)
    async with _bot(db_url, clock) as bot:
        clock.set(REVIEW - timedelta(minutes=1))
        assert await bot.run_job("r2-golden") == 0
        await bot.run_job("notices")
        assert r2_cards(bot, "wangjl") == []

        clock.set(REVIEW + timedelta(minutes=1))
        await bot.run_job("sweeps")
        [card] = r2_cards(bot, "wangjl")
        assert card["main_title"]["title"] == "电话复盘：华东 12-01 4小时响应率 80%"
        assert card["main_title"]["desc"] == "8/10 条线索按时响应，目标 85%"
        assert [(r["keyname"], r["value"]) for r in card["horizontal_content_list"]] == [
            ("10:08", "late线索08（超时5.0h）"), ("10:09", "none线索09（未分配）")]
        assert card["button_list"][0]["key"] == "r2:done" and card["task_id"].startswith("r2-")
        assert all(r2_cards(bot, u) == [] for u in ("zhaojl", "ops1", "zhangsan", "lisi"))

        clock.advance(timedelta(minutes=5))
        assert await bot.run_job("r2-golden") == 0  # rerun: nothing twice
        await bot.run_job("sweeps")
        assert len(r2_cards(bot, "wangjl")) == 1

        await add_leads(db, ids["east"], DAY + timedelta(days=1), on_time=5)  # Wednesday: all on time
        clock.set(REVIEW + timedelta(days=1, minutes=1))
        assert await bot.run_job("r2-golden") == 0
        await bot.run_job("sweeps")
        assert len(r2_cards(bot, "wangjl")) == 1
    async with db.sessions() as s:
        rows = (await s.scalars(select(Escalation).where(Escalation.rule == "R2"))).all()
        assert [(e.subject_type, e.subject_id, e.period) for e in rows] == [("region", ids["east"], "2026-12-01")]
        days = (await s.scalars(select(SweepPeriod.period).where(SweepPeriod.rule == "R2").order_by(SweepPeriod.id)))
        assert days.all() == ["2026-11-30", "2026-12-01", "2026-12-02"]  # each day reviewed once


async def test_r2_exactly_85_percent_and_exactly_four_hours_are_healthy(db_url: str, db: Database,
                                                                      clock: SettableClock) -> None:
    """17 of 20 first contacted exactly 4 h after creation, 3 late: 85% is not below 85% → nothing."""
    clock.set(DAY)
    ids = await seed_regions(db, clock)
    await add_leads(db, ids["east"], DAY, on_time=17, late=3)
    async with _bot(db_url, clock) as bot:
        clock.set(REVIEW + timedelta(hours=1))
        assert await bot.run_job("r2-golden") == 0
        async with db.transaction() as s:  # one more late lead the same day: 17/21 = 81% — but the day is done
            s.add(Lead(title="补录", region_id=ids["east"], created_at=DAY + timedelta(hours=20)))
        assert await bot.run_job("r2-golden") == 0


async def test_r2_fixed_before_the_review_sends_nothing(db_url: str, db: Database, clock: SettableClock) -> None:
    """The two misses were in fact handled in time and recorded late (before the review): nothing is sent."""
    clock.set(DAY)
    ids = await seed_regions(db, clock)
    await add_leads(db, ids["east"], DAY, on_time=8, late=1, unassigned=1)
    async with db.transaction() as s:
        for lead in (await s.scalars(select(Lead).where(Lead.title.like("%线索0_")))).all():
            if lead.title.startswith(("late", "none")):
                lead.assigned_at = lead.created_at + timedelta(minutes=10)
                lead.first_contact_at = lead.created_at + timedelta(hours=1)
    async with _bot(db_url, clock) as bot:
        clock.set(REVIEW + timedelta(minutes=1))
        assert await bot.run_job("r2-golden") == 0


async def test_r2_leads_without_a_region_go_to_sales_ops(db_url: str, db: Database, clock: SettableClock) -> None:
    clock.set(DAY)
    await seed_regions(db, clock)
    await add_leads(db, None, DAY, on_time=1, unassigned=1)
    async with _bot(db_url, clock) as bot:
        clock.set(REVIEW + timedelta(minutes=1))
        assert await bot.run_job("r2-golden") == 1
        await bot.run_job("notices")
        [card] = r2_cards(bot, "ops1")
        assert card["main_title"]["title"] == "电话复盘：未分区域 12-01 4小时响应率 50%"
        assert r2_cards(bot, "wangjl") == []
