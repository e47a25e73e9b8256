"""R12 and R13 through the real app and fake WeCom, on Asia/Shanghai ISO weeks (W49 = 11-30 … 12-06).

R12: a rep below 65% for two weeks running → one 专项陪访 card to the manager (at Monday 09:00: it fires at
00:00 and waits for working hours), once per rep per week; a rep who moved the stuck deal is not coached.
R13: a customer below 0.8 of its industry's baseline last week → the industry's talk-track pack to the owner,
once per customer per week; healthy customers and customers fixed the next week get nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import SHANGHAI, SettableClock
from bot.config_defaults import DEFAULT_TALK_TRACKS
from store.db import Database
from store.models import Activity, Customer, Escalation, Opportunity, StageMove
from tests.harness import running_bot, seed_customers, seed_team

W49 = datetime(2026, 11, 30, 0, 0, tzinfo=SHANGHAI)
W50 = W49 + timedelta(days=7)
W51 = W50 + timedelta(days=7)
W52 = W51 + timedelta(days=7)


def _cards(bot: Any, userid: str, prefix: str) -> list[dict[str, Any]]:
    cards = [m.body.get("template_card") or {} for m in bot.fake.delivered(userid)]
    return [c for c in cards if str(c.get("task_id", "")).startswith(prefix)]


async def _escalations(db: Database, rule: str) -> list[tuple[str, int, str]]:
    async with db.sessions() as s:
        rows = (await s.scalars(select(Escalation).where(Escalation.rule == rule).order_by(Escalation.id))).all()
        return [(e.subject_type, e.subject_id, e.period) for e in rows]


# ---------------------------------------------------------------- R12


async def seed_deals(db: Database, clock: SettableClock) -> dict[str, int]:
    """Monday W49 10:00: 张三 and 李四 each have one deal entering 需求诊断 (72 h limit → due Thursday)."""
    clock.set(W49 + timedelta(hours=10))
    ids = await seed_team(db, clock)
    now = clock.now()
    async with db.transaction() as s:
        for rep in ("zhangsan", "lisi"):
            customer = Customer(name=f"{rep}的客户", owner_id=ids[rep], industry="IT服务", created_at=now)
            s.add(customer)
            await s.flush()
            opp = Opportunity(name=f"{rep}的商机", customer_id=customer.id, owner_id=ids[rep], stage="需求诊断",
                              stage_entered_at=now, last_progress_at=now, created_at=now)
            s.add(opp)
            await s.flush()
            ids[f"opp_{rep}"] = opp.id
    return ids


async def test_r12_two_weeks_below_gives_the_manager_one_coaching_card(db_url: str, db: Database,
                                                                       clock: SettableClock) -> None:
    ids = await seed_deals(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        # 李四 moves his deal on late in W50 (Saturday; the next stage's limit falls in W51): W49 0/1,
        # W50 1/1 — fixed, not coached.
        clock.set(W50 + timedelta(days=5, hours=11))
        async with db.transaction() as s:
            opp = await s.get(Opportunity, ids["opp_lisi"])
            assert opp is not None
            s.add(StageMove(opportunity_id=opp.id, from_stage="需求诊断", to_stage="方案呈现", at=clock.now()))
            opp.stage, opp.stage_entered_at = "方案呈现", clock.now()

        clock.set(W51 - timedelta(minutes=1))  # Sunday 23:59: W50 not over — only W49 below so far
        assert await bot.run_job("r12-coaching") == 0
        clock.set(W51 + timedelta(minutes=1))  # Monday 00:01: W49 and W50 both below for 张三
        assert await bot.run_job("r12-coaching") == 1
        await bot.run_job("notices")
        assert _cards(bot, "wangjl", "r12-") == []  # R18: waits for 09:00
        clock.set(W51 + timedelta(hours=9))
        await bot.run_job("notices")
        [card] = _cards(bot, "wangjl", "r12-")
        assert card["main_title"]["title"] == "专项陪访：张三 阶段跃迁率连续 2 周低于 65%"
        assert card["main_title"]["desc"] == "上周 0%：0/1 个到期商机推进到下一阶段"
        rows = {r["keyname"]: r["value"] for r in card["horizontal_content_list"]}
        assert rows == {"W50": "0%（0/1）", "W49": "0%（0/1）", "最卡阶段": "需求诊断 0%（0/1）"}
        assert card["button_list"][0]["key"] == "r12:done"
        assert all(_cards(bot, u, "r12-") == [] for u in ("zhangsan", "lisi"))

        clock.advance(timedelta(hours=2))
        assert await bot.run_job("r12-coaching") == 0  # rerun: nothing twice
        await bot.run_job("sweeps")
        assert len(_cards(bot, "wangjl", "r12-")) == 1
        assert await _escalations(db, "R12") == [("user", ids["zhangsan"], "2026-W50")]

        clock.set(W52 + timedelta(hours=9))  # still stuck in W51: once per rep per week → W51's card
        assert await bot.run_job("r12-coaching") == 1
        assert await _escalations(db, "R12") == [("user", ids["zhangsan"], "2026-W50"),
                                                 ("user", ids["zhangsan"], "2026-W51")]


async def test_r12_a_week_with_nothing_due_breaks_the_run(db_url: str, db: Database, clock: SettableClock) -> None:
    """Deals moved on before their limit are never due: no rate, never below, no card."""
    ids = await seed_deals(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        clock.advance(timedelta(hours=24))
        async with db.transaction() as s:
            for rep in ("zhangsan", "lisi"):
                opp = await s.get(Opportunity, ids[f"opp_{rep}"])
                assert opp is not None
                s.add(StageMove(opportunity_id=opp.id, from_stage="需求诊断", to_stage="方案呈现", at=clock.now()))
                opp.stage, opp.stage_entered_at, opp.status = "方案呈现", clock.now(), "won"
                opp.closed_at = clock.now() + timedelta(hours=1)
        for monday in (W50, W51, W52):
            clock.set(monday + timedelta(hours=9))
            assert await bot.run_job("r12-coaching") == 0


# ---------------------------------------------------------------- R13

BASELINE = {"IT服务": {"wechat": 10.0, "note_chars": 100.0, "docs": 10.0}}  # weighted: 3 + 40 + 3 = 46


async def add_contact(db: Database, customer_id: int, user_id: int, at: datetime, *, wechat: int = 0,
                      chars: int = 0, docs: int = 0) -> None:
    async with db.transaction() as s:
        for i in range(wechat):
            s.add(Activity(kind="wechat", user_id=user_id, customer_id=customer_id,
                           occurred_at=at + timedelta(minutes=i), source="wecom", created_at=at))
        for i in range(docs):
            s.add(Activity(kind="doc", user_id=user_id, customer_id=customer_id,
                           occurred_at=at + timedelta(minutes=i), source="wecom", created_at=at))
        if chars:
            s.add(Activity(kind="meeting", user_id=user_id, customer_id=customer_id, occurred_at=at, note="纪要",
                           note_chars=chars, source="wecom", created_at=at))


async def test_r13_talk_track_pack_to_the_owner_of_a_shallow_customer_once(db_url: str, db: Database,
                                                                          clock: SettableClock) -> None:
    """W49: 华远科技 (张三) as deep as the baseline, 宏达 (张三) at 0.82, 华远物流 (李四) at 0.39 → Monday W50 09:00
    one message to 李四 with the IT服务 pack; rerun nothing; W50 all deep → nothing more."""
    clock.set(W49 + timedelta(hours=10))
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    tuesday = W49 + timedelta(days=1, hours=10)
    await add_contact(db, customers["huayuan"], ids["zhangsan"], tuesday, wechat=10, chars=100, docs=10)  # 1.0
    await add_contact(db, customers["hongda"], ids["zhangsan"], tuesday, wechat=5, chars=90, docs=1)  # 37.8/46 = 0.82
    await add_contact(db, customers["hylogistics"], ids["lisi"], tuesday, wechat=5, chars=40, docs=1)  # 17.8/46 = 0.39
    await add_contact(db, customers["hylogistics"], ids["lisi"], W50 + timedelta(hours=1), wechat=50)  # next week
    overrides = {"metrics": {"depth_baselines": BASELINE}}
    async with running_bot(db_url, clock, run_sender=False, overrides=overrides) as bot:
        clock.set(W50 - timedelta(minutes=1))  # Sunday 23:59: W48 is the last full week (they did not exist)
        assert await bot.run_job("r13-depth") == 0
        clock.set(W50 + timedelta(minutes=1))
        assert await bot.run_job("r13-depth") == 1
        clock.set(W50 + timedelta(hours=9))
        await bot.run_job("notices")
        [text] = [t for t in bot.texts("lisi") if t.startswith("📉")]
        assert text.startswith("📉 客户「华远物流」上周接触深度指数 0.39（低于 0.8）："
                               "微信 5 条、纪要 40 字、文档 1 份。")
        assert text.endswith(DEFAULT_TALK_TRACKS["IT服务"])
        assert [t for t in bot.texts("zhangsan") if t.startswith("📉")] == []
        assert [t for t in bot.texts("wangjl") if t.startswith("📉")] == []

        clock.advance(timedelta(hours=1))
        assert await bot.run_job("r13-depth") == 0  # rerun: nothing twice
        await bot.run_job("sweeps")
        assert len([t for t in bot.texts("lisi") if t.startswith("📉")]) == 1

        for key, owner in (("huayuan", "zhangsan"), ("hongda", "zhangsan"), ("hylogistics", "lisi")):
            await add_contact(db, customers[key], ids[owner], W50 + timedelta(days=2), wechat=10, chars=100, docs=10)
        clock.set(W51 + timedelta(hours=9))
        assert await bot.run_job("r13-depth") == 0
    assert await _escalations(db, "R13") == [("customer", customers["hylogistics"], "2026-W49")]


async def test_r13_customers_out_of_play_are_not_measured(db_url: str, db: Database, clock: SettableClock) -> None:
    """No open opportunity (won), or no baseline and no pack for the industry: nothing, whatever the contact."""
    clock.set(W49 + timedelta(hours=10))
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with db.transaction() as s:
        for opp in (await s.scalars(select(Opportunity))).all():
            if opp.customer_id == customers["huayuan"]:
                opp.status, opp.closed_at = "won", clock.now()
        for key in ("hongda", "hylogistics"):
            customer = await s.get(Customer, customers[key])
            assert customer is not None
            customer.industry = "能源"
    overrides = {"metrics": {"depth_baselines": BASELINE, "talk_tracks": {"IT服务": "IT服务话术包"}}}
    async with running_bot(db_url, clock, run_sender=False, overrides=overrides) as bot:
        clock.set(W50 + timedelta(hours=9))
        assert await bot.run_job("r13-depth") == 0
