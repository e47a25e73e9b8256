"""R14 visit check-in through the real wire: one message, several turns, arrival → finish, location."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from bot.clock import SettableClock
from store.models import Activity, FollowUpTask, OwnershipConflict
from tests.harness import Bot, running_bot, seed_customers, seed_team


async def said(bot: Bot, userid: str, text: str) -> str:
    """Send one text and return the bot's reply to it (the last message delivered to the user).

    Use with running_bot(..., run_sender=False): settle() then delivers deterministically (a running
    sender loop may hold a row's lease while settle() looks)."""
    before = len(bot.fake.delivered(userid))
    await bot.say(userid, text)
    await bot.settle()
    delivered = bot.fake.delivered(userid)
    assert len(delivered) > before, f"no reply to {text!r}"
    return delivered[-1].content or ""


async def activities(bot: Bot) -> list[Activity]:
    async with bot.deps.db.sessions() as s:
        return list((await s.scalars(select(Activity).order_by(Activity.id))).all())


async def setup(db: Any, clock: SettableClock) -> tuple[dict[str, int], dict[str, int]]:
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    return ids, customers


async def test_one_message_records_the_visit_and_its_follow_up(db_url: str, db: Any, clock: SettableClock) -> None:
    """R14: everything in one message → one visit, one follow-up task, one short confirmation."""
    ids, customers = await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.send(bot.wire.location("zhangsan", 31.2304, 121.4737, "上海市浦东新区华远大厦"))
        await bot.settle()
        reply = await said(bot, "zhangsan", "今日拜访完成 华远科技 1小时 客户认可方案，下周报价")
        assert "已记录拜访" in reply and "上海华远科技有限公司" in reply and "1小时" in reply
        assert "下周报价" in reply and "12月7日" in reply
        [visit] = await activities(bot)
        assert visit.kind == "visit" and visit.status == "done" and visit.customer_id == customers["huayuan"]
        assert visit.duration_minutes == 60 and visit.conclusion == "客户认可方案，下周报价"
        assert visit.location_label == "上海市浦东新区华远大厦" and visit.opportunity_id is not None
        async with bot.deps.db.sessions() as s:
            [task] = (await s.scalars(select(FollowUpTask))).all()
        assert task.due_on == date(2026, 12, 7) and task.title == "下周报价" and task.user_id == ids["zhangsan"]


async def test_missing_pieces_are_asked_one_at_a_time(db_url: str, db: Any, clock: SettableClock) -> None:
    """R14: customer → duration → conclusion → location, each asked once; 跳过 skips only the location."""
    _, customers = await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "哪个客户" in await said(bot, "zhangsan", "拜访完了")
        assert "多长时间" in await said(bot, "zhangsan", "宏达")
        assert "没看懂时长" in await said(bot, "zhangsan", "挺久的")
        assert "结论" in await said(bot, "zhangsan", "45分钟")
        assert "位置" in await said(bot, "zhangsan", "客户要再比较两家")
        assert "只有位置可以跳过" in await said(bot, "zhangsan", "不想说")
        reply = await said(bot, "zhangsan", "跳过")
        assert "已记录拜访" in reply and "45分钟" in reply and "未定位" in reply
        [visit] = await activities(bot)
        assert visit.customer_id == customers["hongda"] and visit.duration_minutes == 45
        assert visit.conclusion == "客户要再比较两家" and visit.lat is None


async def test_ambiguous_customer_offers_candidates(db_url: str, db: Any, clock: SettableClock) -> None:
    """Two customers close to what was typed → both offered; a number picks one."""
    ids, _ = await setup(db, clock)
    async with db.transaction() as s:
        from store.models import Customer

        s.add(Customer(name="宏达超市", owner_id=ids["wangjl"], created_at=clock.now()))
    async with running_bot(db_url, clock, run_sender=False) as bot:
        reply = await said(bot, "lisi", "拜访完成 宏达 半小时 聊得不错")
        assert "1." in reply and "2." in reply and "宏达零售" in reply and "宏达超市" in reply
        second = "宏达零售" if reply.index("宏达零售") > reply.index("宏达超市") else "宏达超市"
        assert "位置" in await said(bot, "lisi", "2")
        assert "已记录拜访" in await said(bot, "lisi", "跳过")
        [visit] = await activities(bot)
        async with bot.deps.db.sessions() as s:
            from store.models import Customer

            chosen = await s.get(Customer, visit.customer_id)
        assert chosen is not None and chosen.name == second


async def test_arrival_then_finish_derives_the_duration(db_url: str, db: Any, clock: SettableClock) -> None:
    """R14: "到达华远" opens the visit, "拜访完成" 80 minutes later closes it with 80 minutes."""
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.send(bot.wire.location("zhangsan", 31.2, 121.5, "华远大厦"))
        assert "已签到" in await said(bot, "zhangsan", "到达华远")
        clock.advance(timedelta(minutes=80))
        reply = await said(bot, "zhangsan", "拜访完成 客户同意做POC")
        assert "1小时20分钟" in reply and "华远大厦" in reply
        [visit] = await activities(bot)
        assert visit.status == "done" and visit.duration_minutes == 80 and visit.conclusion == "客户同意做POC"


async def test_cancel_and_restart_mid_flow(db_url: str, db: Any, clock: SettableClock) -> None:
    """取消 leaves the flow and records nothing; after a restart the flow continues where it stopped."""
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "多长时间" in await said(bot, "zhangsan", "拜访完了 宏达")
        assert "已取消" in await said(bot, "zhangsan", "取消")
        assert await activities(bot) == []
        assert "多长时间" in await said(bot, "zhangsan", "见完宏达了")
    async with running_bot(db_url, clock, run_sender=False) as bot:  # a new process
        assert "结论" in await said(bot, "zhangsan", "一个半小时")
        assert "位置" in await said(bot, "zhangsan", "老板不在，下次再约")
        assert "已记录拜访" in await said(bot, "zhangsan", "跳过")
        [visit] = await activities(bot)
        assert visit.duration_minutes == 90


async def test_same_message_twice_records_one_visit(db_url: str, db: Any, clock: SettableClock) -> None:
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        inner = bot.wire.text("zhangsan", "今日拜访完成 宏达 1小时 客户认可 跳过位置", msg_id=777)
        for _ in range(2):
            assert (await bot.send(inner)).status == 200
        await bot.settle()
        await bot.send(bot.wire.text("zhangsan", "跳过"))
        await bot.settle()
        assert len(await activities(bot)) == 1


async def test_visit_on_another_reps_customer_tells_the_owner_and_records_a_conflict(
    db_url: str, db: Any, clock: SettableClock
) -> None:
    """R17: 李四 visits 张三's customer → 张三 is told; two reps within 30 days → one conflict row."""
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        for user in ("zhangsan", "lisi"):
            await bot.send(bot.wire.location(user, 31.2, 121.5, "宏达门店"))
            await said(bot, user, "拜访完成 宏达零售 30分钟 门店经理想试用")
        assert any("李四" in (m.content or "") and "宏达零售" in (m.content or "")
                   for m in bot.fake.delivered("zhangsan"))
        async with bot.deps.db.sessions() as s:
            [conflict] = (await s.scalars(select(OwnershipConflict))).all()
        assert sorted(conflict.rep_ids) == sorted([a.user_id for a in await activities(bot)])


async def test_location_event_counts_and_a_stale_one_does_not(db_url: str, db: Any, clock: SettableClock) -> None:
    """R14: a LOCATION event (上报地理位置) within 2 h is the visit's location; one older is asked again,
    and a location message then answers the question."""
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.send(bot.wire.event("zhangsan", "LOCATION", Latitude=31.1, Longitude=121.2, Precision=30))
        await bot.settle()
        clock.advance(timedelta(minutes=119))
        assert "已记录拜访" in await said(bot, "zhangsan", "拜访完成 宏达 1小时 门店想先试点")
        clock.advance(timedelta(minutes=2))
        assert "位置" in await said(bot, "zhangsan", "拜访完成 宏达 半小时 又聊了价格")
        await bot.send(bot.wire.location("zhangsan", 31.3, 121.6, "宏达总部"))
        await bot.settle()
        assert "宏达总部" in (bot.fake.delivered("zhangsan")[-1].content or "")
        first, second = await activities(bot)
        assert (first.lat, first.lng) == (31.1, 121.2) and second.location_label == "宏达总部"


async def test_answers_stay_answers_and_only_the_location_may_be_skipped(db_url: str, db: Any,
                                                                          clock: SettableClock) -> None:
    """A conclusion that mentions a stage move is the conclusion; 跳过 is refused for it; a photo sent
    mid-check-in is kept for later and the check-in goes on; "附件" then attaches it."""
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "结论" in await said(bot, "zhangsan", "拜访完成 宏达 1小时")
        assert "结论不能跳过" in await said(bot, "zhangsan", "跳过")
        assert "结论不能跳过" in await said(bot, "zhangsan", "👍👍")
        assert "位置" in await said(bot, "zhangsan", "宏达同意进入需求诊断")
        bot.fake.add_media("MEDIA_SITE", b"\xff\xd8\xff site photo", "image/jpeg")
        await bot.send(bot.wire.image("zhangsan", "MEDIA_SITE"))
        await bot.settle()
        assert "先把当前这条记录完成" in (bot.fake.delivered("zhangsan")[-1].content or "")
        assert "已记录拜访" in await said(bot, "zhangsan", "跳过")
        [visit] = await activities(bot)
        assert visit.conclusion == "宏达同意进入需求诊断"
        assert "这是哪个关键动作" in await said(bot, "zhangsan", "附件")
        assert "已作为「宏达零售·首次需求确认」的附件" in await said(bot, "zhangsan", "宏达 首次需求确认")


async def test_a_very_long_place_name_is_cut_to_fit(db_url: str, db: Any, clock: SettableClock) -> None:
    """WeCom's Label is not bounded: it is cut to the column (a PostgreSQL error would retry forever)."""
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.send(bot.wire.location("zhangsan", 31.2, 121.5, "上海市" * 150))
        assert "已记录拜访" in await said(bot, "zhangsan", "拜访完成 宏达 1小时 门店想先试点")
        [visit] = await activities(bot)
        assert visit.location_label == ("上海市" * 150)[:200]


async def test_generic_words_cannot_become_customers(db_url: str, db: Any, clock: SettableClock) -> None:
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await said(bot, "zhangsan", "拜访完了 30分钟 聊得不错")
        for word in ("新客户 客户", "新客户 报价", "新客户 12345", "新客户 需求调研报告"):
            assert "不像一个客户名称" in await said(bot, "zhangsan", word)
        assert "没有这个序号" in await said(bot, "zhangsan", "9")


async def test_two_reps_at_once_on_one_customer_record_the_conflict(db_url: str, db: Any,
                                                                     clock: SettableClock) -> None:
    """R17 with both check-ins processed concurrently (two conversations): the conflict is still seen."""
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        for user in ("zhangsan", "lisi"):
            await bot.send(bot.wire.location(user, 31.2, 121.5, "宏达门店"))
        await bot.settle()
        for user in ("zhangsan", "lisi"):
            await bot.say(user, "拜访完成 宏达零售 30分钟 门店经理想试用")
        await bot.settle()
        async with bot.deps.db.sessions() as s:
            conflicts = (await s.scalars(select(OwnershipConflict))).all()
        assert len(await activities(bot)) == 2 and len(conflicts) == 1 and len(conflicts[0].rep_ids) == 2


async def test_a_late_processed_message_keeps_its_own_time(db_url: str, db: Any, clock: SettableClock) -> None:
    """A check-in written at 11:00 but processed at 13:00 (an inbox retry) still finds the 10:00 location and
    reads "明天" from its own day; the visit ends when the rep wrote it."""
    await setup(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.send(bot.wire.location("zhangsan", 31.2, 121.5, "宏达门店"))
        await bot.settle()
        written = clock.now() + timedelta(hours=1)
        clock.advance(timedelta(hours=3))
        late = bot.wire.text("zhangsan", "拜访完成 宏达 1小时 明天发报价", create_time=int(written.timestamp()))
        await bot.send(late)
        await bot.settle()
        assert "宏达门店" in (bot.fake.delivered("zhangsan")[-1].content or "")
        [visit] = await activities(bot)
        assert visit.occurred_at == written - timedelta(hours=1)
        async with bot.deps.db.sessions() as s:
            [task] = (await s.scalars(select(FollowUpTask))).all()
        assert task.due_on == date(2026, 12, 1)
