"""R4 stage-stall cards (with their buttons) and R5 silent churn pool, through the real app, the fake WeCom
and a settable clock: just before / just after the limit, once, fixed, per-stage limits, button presses,
snooze, working hours (R18), revival by a check-in."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot.clock import SHANGHAI, SettableClock
from bot.devtools.fake_wecom import Message
from jobs.sweeps.runner import sweeps
from jobs.sweeps.stalls import resend_period, stage_period
from store.db import Database
from store.models import AuditLog, Escalation, Opportunity, User
from store.repos.pipeline import PipelineRepo
from tests.conftest import AGENT_ID
from tests.flows.test_checkin import said
from tests.harness import Bot, running_bot, seed_customers, seed_team

LIMIT = timedelta(hours=72)
MINUTE = timedelta(minutes=1)
SUPERIOR = "liuzj"


async def setup(db: Database, clock: SettableClock, *, keep: tuple[str, ...] = ("huayuan",),
                superior: str | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """The team and customers; only the opportunities of `keep` stay open (the others are won), and
    张三 may get a direct superior other than his manager 王经理."""
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with db.transaction() as s:
        if superior is not None:
            boss = User(name="刘总监", wecom_userid=superior, roles=["manager"], created_at=clock.now())
            s.add(boss)
            await s.flush()
            ids[superior] = boss.id
            zhangsan = await s.get(User, ids["zhangsan"])
            assert zhangsan is not None
            zhangsan.superior_id = boss.id
        for key, customer_id in customers.items():
            if key not in keep:
                opp = (await s.scalars(select(Opportunity).where(Opportunity.customer_id == customer_id))).one()
                opp.status = "won"
    return ids, customers


async def opp_of(db: Database, customer_id: int) -> Opportunity:
    async with db.sessions() as s:
        return (await s.scalars(select(Opportunity).where(Opportunity.customer_id == customer_id))).one()


async def escalations(db: Database, rule: str) -> list[Escalation]:
    async with db.sessions() as s:
        return list((await s.scalars(select(Escalation).where(Escalation.rule == rule).order_by(Escalation.id))).all())


async def tick(bot: Bot, job: str = "r4-stalls") -> int:
    """One sweep, then the notices it made (as the every-minute `sweeps` job does), delivered."""
    fired = await bot.run_job(job)
    await bot.run_job("notices")
    return fired


def cards(bot: Bot, userid: str) -> list[Message]:
    return [m for m in bot.fake.delivered(userid) if m.msgtype == "template_card"]


def card_of(message: Message) -> dict[str, Any]:
    card: dict[str, Any] = message.body["template_card"]
    return card


async def press(bot: Bot, userid: str, task_id: str, key: str, code: str) -> None:
    """A button click as WeCom calls back (its own single-use ResponseCode), then what it queued, delivered."""
    bot.clock.advance(timedelta(seconds=5))
    resp = await bot.send(bot.wire.card_event(userid, task_id, key, code))
    assert resp.status == 200
    await bot.settle()


def _bot(db_url: str, clock: SettableClock, **kw: Any) -> Any:
    return running_bot(db_url, clock, run_sender=False, **kw)


# ---------------------------------------------------------------- R4: the card


async def test_r4_one_card_just_after_the_limit_to_the_manager_copied_to_the_superior(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R4: at 71:59 nothing; at 72:01 one card (one message/send) to 王经理|刘总监 naming customer, deal, owner,
    stage, time and the next gate; rerun nothing; after the deal moves on, nothing more for that stage."""
    ids, customers = await setup(db, clock, superior=SUPERIOR)
    assert {"r4-stalls", "r5-silent"} <= set(sweeps())
    async with _bot(db_url, clock) as bot:
        clock.advance(LIMIT - MINUTE)
        assert await tick(bot) == 0
        assert cards(bot, "wangjl") == [] and cards(bot, SUPERIOR) == []
        clock.advance(2 * MINUTE)
        assert await tick(bot) == 1
        [card_msg] = cards(bot, "wangjl")
        [copy] = cards(bot, SUPERIOR)
        assert copy.msgid == card_msg.msgid and copy.response_code == card_msg.response_code  # one send
        assert bot.fake.delivered("zhangsan") == [] and bot.fake.delivered("lisi") == []
        card = card_of(card_msg)
        assert card["card_type"] == "button_interaction"
        assert card["main_title"]["title"] == "商机停滞：上海华远科技有限公司"
        assert card["main_title"]["desc"] == "「需求诊断」已停留 3天（上限 72 小时）"
        fields = {f["keyname"]: f["value"] for f in card["horizontal_content_list"]}
        assert fields == {"客户": "上海华远科技有限公司", "商机": "上海华远科技有限公司项目", "负责人": "张三",
                          "阶段": "需求诊断", "停留": "3天（11-30 10:00 进入）"}
        assert card["sub_title_text"] == ("进入「方案呈现」还需：\n· 需求调研报告（缺附件、缺负责人确认）\n"
                                          "· 客户签字页（缺附件、缺负责人确认）")
        assert [(b["text"], b["key"]) for b in card["button_list"]] == [
            ("已跟进", "r4:done"), ("约陪访", "r4:joint_visit"), ("稍后提醒", "r4:snooze")]
        [esc] = await escalations(db, "R4")
        opp = await opp_of(db, customers["huayuan"])
        assert esc.task_id == card["task_id"] and len(esc.task_id) <= 128
        assert set(esc.task_id) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-@")
        assert esc.subject_id == opp.id and esc.period == stage_period("需求诊断", opp.stage_entered_at)
        assert esc.recipients == ["wangjl", SUPERIOR] and esc.status == "open"

        clock.advance(timedelta(minutes=5))
        assert await tick(bot) == 0  # rerun: nothing twice
        async with db.transaction() as s:  # fixed: the deal moves on (its new stage has its own clock)
            moving = await s.get(Opportunity, opp.id)
            assert moving is not None
            await PipelineRepo(s).move(moving, "方案呈现", actor_id=ids["zhangsan"], now=clock.now(), forced=True,
                                       reason="test", source_ref=None)
        clock.advance(LIMIT - timedelta(hours=1))
        assert await tick(bot) == 0
        assert len(cards(bot, "wangjl")) == 1 and len(await escalations(db, "R4")) == 1


async def test_r4_per_stage_limit_overrides_the_default(db_url: str, db: Database, clock: SettableClock) -> None:
    """R4: [rules] stage_limits 需求诊断 = 24 h: 华远 (需求诊断) is carded after 24 h, the 触达 deals at 72 h."""
    await setup(db, clock, keep=("huayuan", "hongda", "hylogistics"))
    overrides = {"rules": {"stage_limits": {"需求诊断": 24.0, "方案呈现": 72.0}}}
    async with _bot(db_url, clock, overrides=overrides) as bot:
        clock.advance(timedelta(hours=24) - MINUTE)
        assert await tick(bot) == 0
        clock.advance(2 * MINUTE)
        assert await tick(bot) == 1
        [first] = cards(bot, "wangjl")
        assert card_of(first)["main_title"]["desc"] == "「需求诊断」已停留 1天（上限 24 小时）"
        clock.advance(LIMIT - timedelta(hours=24) - 2 * MINUTE)  # 71:59
        assert await tick(bot) == 0
        clock.advance(2 * MINUTE)
        assert await tick(bot) == 2  # 宏达 (张三) and 华远物流 (李四): both in 王经理's team
        titles = sorted(card_of(m)["main_title"]["title"] for m in cards(bot, "wangjl")[1:])
        assert titles == ["商机停滞：华远物流", "商机停滞：宏达零售"]


async def test_r4_due_at_night_arrives_at_nine_once(db_url: str, db: Database, clock: SettableClock) -> None:
    """R18: a card due at 23:01 on Thursday is fired then, held through the night, delivered Friday 09:00 —
    drawn when it is sent, so it tells how long the deal has stalled by then, not at 23:01."""
    clock.set(datetime(2026, 11, 30, 23, 0, tzinfo=SHANGHAI))
    await setup(db, clock)
    async with _bot(db_url, clock) as bot:
        clock.set(datetime(2026, 12, 3, 23, 1, tzinfo=SHANGHAI))
        await bot.run_job("sweeps")
        assert len(await escalations(db, "R4")) == 1 and cards(bot, "wangjl") == []
        clock.set(datetime(2026, 12, 4, 8, 59, tzinfo=SHANGHAI))
        await bot.run_job("sweeps")
        assert cards(bot, "wangjl") == []
        clock.set(datetime(2026, 12, 4, 9, 0, tzinfo=SHANGHAI))
        await bot.run_job("sweeps")
        await bot.run_job("sweeps")
        [card] = cards(bot, "wangjl")
        assert card.at.astimezone(SHANGHAI) == datetime(2026, 12, 4, 9, 0, tzinfo=SHANGHAI)
        # entered 11-30 23:00, sent 12-04 09:00
        assert card_of(card)["main_title"]["desc"] == "「需求诊断」已停留 3天10小时（上限 72 小时）"
        assert len(await escalations(db, "R4")) == 1


async def test_r4_two_sweeps_at_once_card_each_deal_once(db_url: str, db: Database, clock: SettableClock) -> None:
    """Two app instances sweep one database at the same moment: one escalation and one card per deal."""
    await setup(db, clock, keep=("huayuan", "hongda", "hylogistics"))
    clock.advance(LIMIT + MINUTE)
    async with _bot(db_url, clock) as one, _bot(db_url, clock, fake=one.fake) as two:
        from jobs.sweeps.stalls import run_stalls

        counts = await asyncio.gather(run_stalls(one.deps, clock.now()), run_stalls(two.deps, clock.now()),
                                      run_stalls(one.deps, clock.now()))
        assert sum(counts) == 3
        await tick(one)
        await tick(two)
        assert len(cards(one, "wangjl")) == 3 and len(await escalations(db, "R4")) == 3


async def test_r4_a_copy_that_does_not_fit_one_send_goes_as_text(db_url: str, db: Database,
                                                                 clock: SettableClock) -> None:
    """"manager|superior" longer than an outbox recipient (64): the card to the manager, a text copy to the
    superior (who then cannot press, and is not among the card's updated recipients)."""
    long_id = "s" * 60
    await setup(db, clock, superior=long_id)
    async with _bot(db_url, clock) as bot:
        clock.advance(LIMIT + MINUTE)
        assert await tick(bot) == 1
        assert len(cards(bot, "wangjl")) == 1 and cards(bot, long_id) == []
        [text] = bot.texts(long_id)
        assert text.startswith("📌 抄送：张三 的商机「上海华远科技有限公司项目」") and "需求诊断" in text
        [esc] = await escalations(db, "R4")
        assert esc.data["card_to"] == ["wangjl"]


async def test_r4_period_is_the_same_in_sql_and_python(db: Database, clock: SettableClock) -> None:
    """The anti-join computes R4's period in SQL: it must equal `stage_period` (long stage names cut, the
    entry time to the second in UTC), or every run would look at every stalled deal again."""
    from jobs.sweeps.stalls import _stage_period_sql

    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    entered = datetime(2026, 11, 30, 23, 59, 59, 987654, tzinfo=SHANGHAI)
    async with db.transaction() as s:
        opp = (await s.scalars(select(Opportunity).where(Opportunity.customer_id == customers["huayuan"]))).one()
        opp.stage, opp.stage_entered_at = "很长很长的阶段名称超过十二个字了吧", entered
    async with db.sessions() as s:
        in_sql = await s.scalar(select(_stage_period_sql(db.engine.dialect.name)).where(Opportunity.id == opp.id))
    assert in_sql == stage_period(opp.stage, entered) == "很长很长的阶段名称超过十@20261130155959"
    assert len(resend_period(resend_period(in_sql) or "") or "") <= 32


# ---------------------------------------------------------------- R4: the buttons


async def test_a_press_updates_the_card_for_everyone_and_a_second_press_shows_who_acted(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R4: 王经理 presses 约陪访 → recorded (and audited), the card updated for 王经理 and 刘总监 with this
    press's response code; 刘总监 pressing 已跟进 afterwards records nothing and sees who already acted."""
    ids, _ = await setup(db, clock, superior=SUPERIOR)
    async with _bot(db_url, clock) as bot:
        clock.advance(LIMIT + MINUTE)
        await tick(bot)
        [card_msg] = cards(bot, "wangjl")
        task_id = card_of(card_msg)["task_id"]

        code = bot.fake.issue_response_code(["wangjl", SUPERIOR])  # what the click callback carries
        await press(bot, "wangjl", task_id, "r4:joint_visit", code)
        assert bot.fake.card_updates == [{"userids": ["wangjl", SUPERIOR], "agentid": AGENT_ID,
                                          "response_code": code, "button": {"replace_name": "约陪访 · 王经理"}}]
        [esc] = await escalations(db, "R4")
        assert (esc.action, esc.acted_by, esc.status) == ("joint_visit", ids["wangjl"], "done")
        assert esc.acted_at == clock.now()
        async with db.sessions() as s:
            [audit] = (await s.scalars(select(AuditLog))).all()
        assert (audit.action, audit.actor_id, audit.subject_type, audit.subject_id) == (
            "r4.joint_visit", ids["wangjl"], "escalation", esc.id)

        second = bot.fake.issue_response_code([SUPERIOR])
        await press(bot, SUPERIOR, task_id, "r4:done", second)
        assert bot.fake.card_updates[1] == {"userids": [SUPERIOR], "agentid": AGENT_ID, "response_code": second,
                                           "button": {"replace_name": "王经理 已处理：约陪访"}}
        [again] = await escalations(db, "R4")
        assert (again.action, again.acted_by, again.acted_at) == ("joint_visit", ids["wangjl"], esc.acted_at)
        async with db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(AuditLog)) == 1


async def test_presses_that_change_nothing_get_a_plain_answer(db_url: str, db: Database, clock: SettableClock) -> None:
    """A non-recipient, an unknown card, an unknown button, missing fields: a clear text (or, without a
    button key at all, silence), never a failure; nothing recorded."""
    await setup(db, clock)
    async with _bot(db_url, clock) as bot:
        clock.advance(LIMIT + MINUTE)
        await tick(bot)
        task_id = card_of(cards(bot, "wangjl")[0])["task_id"]

        await press(bot, "lisi", task_id, "r4:done", bot.fake.issue_response_code(["lisi"]))
        assert bot.texts("lisi") == ["这张提醒卡片不是发给你的，操作没有记录。"]
        await press(bot, "wangjl", "r4-nope", "r4:done", bot.fake.issue_response_code(["wangjl"]))
        await press(bot, "wangjl", task_id, "r4:whatever", bot.fake.issue_response_code(["wangjl"]))
        for fields in ({"EventKey": "r4:done"}, {"EventKey": "r4:done", "TaskId": "", "ResponseCode": ""}):
            clock.advance(timedelta(seconds=5))
            resp = await bot.send(bot.wire.event("wangjl", "template_card_event", **fields))
            assert resp.status == 200
        clock.advance(timedelta(seconds=5))
        assert (await bot.send(bot.wire.event("wangjl", "template_card_event", TaskId=task_id))).status == 200
        await bot.settle()
        assert bot.texts("wangjl")[1:] == ["这张提醒卡片已失效或无法识别，不需要再处理。"] * 4
        assert bot.fake.card_updates == []
        [esc] = await escalations(db, "R4")
        assert esc.acted_at is None and esc.status == "open"
        assert {row.status for row in await bot.inbox()} == {"done"}

        # A press whose callback lacks the ResponseCode is still recorded; the card cannot be updated.
        clock.advance(timedelta(seconds=5))
        await bot.send(bot.wire.event("wangjl", "template_card_event", EventKey="r4:done", TaskId=task_id))
        await bot.settle()
        assert bot.texts("wangjl")[-1] == "已记录：已跟进。（卡片状态暂时无法更新）"
        [esc] = await escalations(db, "R4")
        assert esc.action == "done"


async def test_snooze_sends_the_card_again_once_after_24_hours_if_still_stalled(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R4 稍后提醒: snoozed 24 h; at 23:59 nothing, at 24:01 the card again (once, new task id) for the deal
    still stalled in that stage; the deal that moved on meanwhile is not carded again."""
    ids, customers = await setup(db, clock, keep=("huayuan", "hongda"))
    async with _bot(db_url, clock) as bot:
        clock.advance(LIMIT + MINUTE)
        assert await tick(bot) == 2
        by_title = {card_of(m)["main_title"]["title"]: card_of(m)["task_id"] for m in cards(bot, "wangjl")}
        for task_id in by_title.values():
            await press(bot, "wangjl", task_id, "r4:snooze", bot.fake.issue_response_code(["wangjl"]))
        assert [u["button"]["replace_name"] for u in bot.fake.card_updates] == ["稍后提醒 · 王经理"] * 2
        huayuan = await opp_of(db, customers["huayuan"])
        esc = next(e for e in await escalations(db, "R4") if e.subject_id == huayuan.id)
        assert esc.status == "snoozed" and esc.acted_at is not None
        assert esc.snoozed_until == esc.acted_at + timedelta(hours=24)
        snoozed_at = esc.acted_at

        clock.advance(timedelta(hours=1))
        async with db.transaction() as s:  # 宏达 moves on during the snooze
            hongda = (await s.scalars(select(Opportunity).where(
                Opportunity.customer_id == customers["hongda"]))).one()
            await PipelineRepo(s).move(hongda, "需求诊断", actor_id=ids["zhangsan"], now=clock.now(), forced=True,
                                       reason="test", source_ref=None)

        clock.set(snoozed_at + timedelta(hours=24) - MINUTE)
        assert await tick(bot) == 0
        clock.advance(2 * MINUTE)
        assert await tick(bot) == 1
        assert len(cards(bot, "wangjl")) == 3
        again = card_of(cards(bot, "wangjl")[-1])
        assert again["main_title"]["title"] == "再次提醒 · 商机停滞：上海华远科技有限公司"
        assert again["task_id"] not in by_title.values()
        rows = await escalations(db, "R4")
        opp = await opp_of(db, customers["huayuan"])
        first = next(e for e in rows if e.subject_id == opp.id and e.task_id != again["task_id"])
        resent = next(e for e in rows if e.task_id == again["task_id"])
        assert resent.period == resend_period(first.period) == stage_period("需求诊断", opp.stage_entered_at) + ":s1"
        assert first.status == "reminded"

        for _ in range(2):  # once: not again while it stays stalled (宏达's new stage is not due yet)
            clock.advance(timedelta(hours=20))
            assert await tick(bot) == 0
        assert len(cards(bot, "wangjl")) == 3


# ---------------------------------------------------------------- R5


async def test_r5_silent_after_three_limits_owner_and_manager_told_once_revived_by_a_check_in(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R5: at 3 × 72 h − 1 min nothing; just after: status silent, 张三 and 王经理 told once; a check-in on
    华远 through the wire revives it; no new R5 until it has been silent for another 3 × 72 h."""
    _, customers = await setup(db, clock)
    silent_after = 3 * LIMIT
    async with _bot(db_url, clock) as bot:
        clock.advance(silent_after - MINUTE)
        assert await tick(bot, "r5-silent") == 0
        assert (await opp_of(db, customers["huayuan"])).status == "open"
        clock.advance(2 * MINUTE)
        assert await tick(bot, "r5-silent") == 1
        opp = await opp_of(db, customers["huayuan"])
        assert opp.status == "silent"
        [owner_text] = bot.texts("zhangsan")
        [manager_text] = bot.texts("wangjl")
        assert owner_text.startswith("🔕 你的商机「上海华远科技有限公司项目」（上海华远科技有限公司）已 9 天没有进展")
        assert manager_text.startswith(
            "🔕 张三 的商机「上海华远科技有限公司项目」（上海华远科技有限公司，需求诊断）已 9 天没有进展")
        [esc] = await escalations(db, "R5")
        assert esc.recipients == ["zhangsan", "wangjl"]
        clock.advance(timedelta(minutes=5))
        assert await tick(bot, "r5-silent") == 0  # rerun: nothing twice

        await bot.send(bot.wire.location("zhangsan", 31.2304, 121.4737, "上海市浦东新区华远大厦"))
        await bot.settle()
        reply = await said(bot, "zhangsan", "今日拜访完成 华远科技 1小时 客户重新评估预算")
        assert "已记录拜访" in reply
        revived = await opp_of(db, customers["huayuan"])
        assert revived.status == "open" and revived.last_progress_at == clock.now()
        assert await tick(bot, "r5-silent") == 0
        clock.advance(silent_after - MINUTE)
        assert await tick(bot, "r5-silent") == 0
        clock.advance(2 * MINUTE)
        assert await tick(bot, "r5-silent") == 1  # silent again: a new period, told again
        assert len(await escalations(db, "R5")) == 2 and len(bot.texts("wangjl")) == 2
