"""R17 ownership conflict through the real wire: two reps' check-ins on one customer write the conflict
(handlers/common.py); the sweep tells the owner's manager once, naming the reps; a third rep later in the
same period widens the conflict without a second alert; without an owner, each rep's manager is told."""

from __future__ import annotations

from sqlalchemy import select

from bot.clock import SettableClock
from store.db import Database
from store.models import Customer, Escalation, OrgUnit, OwnershipConflict, User
from tests.harness import Bot, running_bot, seed_customers, seed_team
from tests.sweeps.test_stale import visit

ALERT = "撞单提醒"


def alerts(bot: Bot, userid: str) -> list[str]:
    return [t for t in bot.texts(userid) if ALERT in t]


async def add_team(db: Database, clock: SettableClock, ids: dict[str, int]) -> dict[str, int]:
    """上海二组 led by 赵经理 (zhaojl) with rep 王五 (wangwu), in the same region."""
    now = clock.now()
    async with db.transaction() as s:
        region = (await s.scalars(select(OrgUnit).where(OrgUnit.kind == "region"))).one()
        team = OrgUnit(kind="team", name="上海二组", parent_id=region.id, created_at=now)
        s.add(team)
        await s.flush()
        manager = User(name="赵经理", wecom_userid="zhaojl", roles=["manager"], team_id=team.id, created_at=now)
        s.add(manager)
        await s.flush()
        team.manager_id = manager.id
        rep = User(name="王五", wecom_userid="wangwu", roles=["rep"], team_id=team.id, superior_id=manager.id,
                   created_at=now)
        s.add(rep)
        await s.flush()
        return {**ids, "zhaojl": manager.id, "wangwu": rep.id}


async def conflicts(db: Database) -> list[OwnershipConflict]:
    async with db.sessions() as s:
        return list((await s.scalars(select(OwnershipConflict).order_by(OwnershipConflict.id))).all())


async def test_r17_two_reps_on_one_customer_tell_the_owners_manager_once(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R17: 李四 visits his own 华远物流 (one rep: nothing); 张三 visits it too (two reps in 30 days) → 王经理,
    the owner's manager, gets one message naming both and the owner; reruns nothing; 王五 (another team)
    visiting it in the same month widens the conflict but alerts nobody again."""
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    await add_team(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await visit(bot, "lisi", "华远物流")
        assert await bot.run_job("sweeps") == 0
        assert await conflicts(db) == []
        clock.advance(minutes=30)
        await visit(bot, "zhangsan", "华远物流")
        [conflict] = await conflicts(db)
        assert conflict.notified_at is None and sorted(conflict.rep_ids) == sorted([ids["zhangsan"], ids["lisi"]])
        assert await bot.run_job("sweeps") == 1
        [text] = alerts(bot, "wangjl")
        assert "客户「华远物流」近 30 天有 2 位销售在跟进" in text and "张三" in text and "李四" in text
        assert "负责人：李四" in text
        for rep in ("zhangsan", "lisi", "wangwu", "zhaojl"):
            assert alerts(bot, rep) == []
        clock.advance(minutes=5)
        assert await bot.run_job("sweeps") == 0  # rerun: nothing twice

        clock.advance(hours=2)
        await visit(bot, "wangwu", "华远物流")
        [conflict] = await conflicts(db)
        assert len(conflict.rep_ids) == 3 and conflict.notified_at is not None
        assert await bot.run_job("sweeps") == 0
        assert len(alerts(bot, "wangjl")) == 1 and alerts(bot, "zhaojl") == []
    async with db.sessions() as s:
        [esc] = (await s.scalars(select(Escalation).where(Escalation.rule == "R17"))).all()
    assert esc.subject_type == "customer" and esc.period == "2026-11" and esc.recipients == ["wangjl"]


async def test_r17_without_an_owner_each_reps_manager_is_told(db_url: str, db: Database, clock: SettableClock) -> None:
    """R17: a customer nobody owns, visited by 张三 (王经理's team) and 王五 (赵经理's team) → each manager
    gets one message; the reps none."""
    ids = await seed_team(db, clock)
    ids = await add_team(db, clock, ids)
    async with db.transaction() as s:
        s.add(Customer(name="新光百货", industry="零售", created_at=clock.now()))
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await visit(bot, "zhangsan", "新光百货")
        clock.advance(minutes=10)
        await visit(bot, "wangwu", "新光百货")
        assert await bot.run_job("sweeps") == 1
        for manager in ("wangjl", "zhaojl"):
            [text] = alerts(bot, manager)
            assert "新光百货" in text and "张三、王五" in text and "负责人：未分配" in text
        for rep in ("zhangsan", "wangwu"):
            assert alerts(bot, rep) == []
        assert await bot.run_job("sweeps") == 0
