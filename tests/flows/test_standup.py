"""R16 Monday stand-up through the real wire: three answers (stuck, support, resolve-by) in one message or
one question at a time, the Monday prompt's state, one row per rep and week (the latest wins)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import SHANGHAI, SettableClock
from bot.nlu.standup import Part, split_answer
from bot.nlu.text import clean
from handlers.standup import prompt_rep
from store.models import Activity, ConversationState, InboxMessage, StandupAnswer, User
from store.repos.conversations import ConversationRepo
from tests.flows.test_checkin import said
from tests.harness import Bot, running_bot, seed_customers, seed_team

MONDAY = date(2026, 11, 30)  # the conftest clock starts on Monday 2026-11-30 10:00 (Asia/Shanghai)
THREE_PARTS = {Part.STUCK: "华远卡在预算", Part.SUPPORT: "需要王经理陪访", Part.RESOLVE: "12月10日前解决"}


def running(db_url: str, clock: SettableClock) -> AbstractAsyncContextManager[Bot]:
    """The app without its background sender: `settle()` alone delivers, so a reply is never left half
    recorded by a sender task cancelled at shutdown (the next process would wait for its lease)."""
    return running_bot(db_url, clock, run_sender=False)


async def setup(db: Any, clock: SettableClock) -> tuple[dict[str, int], dict[str, int]]:
    ids = await seed_team(db, clock)
    return ids, await seed_customers(db, clock, ids)


async def answers(bot: Bot) -> list[StandupAnswer]:
    async with bot.deps.db.sessions() as s:
        return list((await s.scalars(select(StandupAnswer).order_by(StandupAnswer.id))).all())


async def state_of(bot: Bot, userid: str) -> ConversationState | None:
    async with bot.deps.db.sessions() as s:
        return (await s.scalars(select(ConversationState).where(ConversationState.conversation_key == userid))).first()


async def prompt(db: Any, user_id: int, userid: str, at: datetime) -> None:
    """What the Monday 09:00 sweep does for each rep (R16): the rep's next text is the answer."""
    async with db.transaction() as s:
        await prompt_rep(ConversationRepo(s), channel="wecom", conversation_key=userid, user_id=user_id, now=at,
                         ttl=timedelta(hours=3))


async def test_one_message_records_all_three_parts(db_url: str, db: Any, clock: SettableClock) -> None:
    """R16: "周会 1… 2… 3…" → one row: the stuck text and its customers, the support and its people, the
    date, the keywords; the reply lists the three parts as stored."""
    ids, customers = await setup(db, clock)
    text = "周会 1.华远卡在预算，宏达零售也卡在决策人 2.需要王经理陪访 3.12月10日前解决"
    async with running(db_url, clock) as bot:
        reply = await said(bot, "zhangsan", text)
        assert reply == ("✅ 本周周会已记录：\n"
                         "卡点：华远卡在预算，宏达零售也卡在决策人（上海华远科技有限公司、宏达零售）\n"
                         "需要支持：需要王经理陪访（王经理）\n"
                         "预计解决：12月10日（周四）")
        [row] = await answers(bot)
        assert row.user_id == ids["zhangsan"] and row.week == MONDAY and not row.prompted
        assert row.stuck == "华远卡在预算，宏达零售也卡在决策人"
        assert row.stuck_customer_ids == [customers["huayuan"], customers["hongda"]]
        assert row.support == "需要王经理陪访" and row.support_user_ids == [ids["wangjl"]]
        assert row.resolve_by == date(2026, 12, 10) and row.raw == text
        assert "预算" in row.keywords and all(isinstance(k, str) for k in row.keywords)
        assert row.updated_at is None
        state = await state_of(bot, "zhangsan")
        assert state is None or state.flow is None


async def test_the_monday_prompt_takes_any_text_as_the_answer(db_url: str, db: Any, clock: SettableClock) -> None:
    """R16: after the 09:00 prompt (state standup/answer, prompted) the next text is the answer, with no
    "周会" in front; the row says it was prompted and the flow is left."""
    ids, customers = await setup(db, clock)
    await prompt(db, ids["zhangsan"], "zhangsan", clock.now())
    clock.advance(timedelta(minutes=20))
    async with running(db_url, clock) as bot:
        reply = await said(bot, "zhangsan", "华远卡在预算，需要王总出面，下周五前搞定")
        assert "本周周会已记录" in reply and "12月11日（周五）" in reply
        [row] = await answers(bot)
        assert row.prompted and row.stuck == "华远卡在预算" and row.stuck_customer_ids == [customers["huayuan"]]
        assert row.support == "需要王总出面" and row.support_user_ids == [ids["wangjl"]]  # 王 + 总: the one manager 王
        assert row.resolve_by == date(2026, 12, 11)
        state = await state_of(bot, "zhangsan")
        assert state is not None and state.flow is None


async def test_prompted_answer_that_reads_like_a_stage_move_is_an_answer(db_url: str, db: Any,
                                                                        clock: SettableClock) -> None:
    """R16: in the prompted flow "华远推进到报价卡住了" is what is stuck (no stage moves); a real check-in
    with a duration still leaves the flow."""
    ids, _ = await setup(db, clock)
    await prompt(db, ids["zhangsan"], "zhangsan", clock.now())
    async with running(db_url, clock) as bot:
        assert "需要谁的支持" in await said(bot, "zhangsan", "华远推进到报价卡住了")
        assert "预计什么时候" in await said(bot, "zhangsan", "王经理")
        reply = await said(bot, "zhangsan", "下周五前")
        assert "卡点：华远推进到报价卡住了" in reply and "预计解决：12月11日（周五）" in reply
        [row] = await answers(bot)
        assert row.prompted and row.raw == "华远推进到报价卡住了\n王经理\n下周五前"
    await prompt(db, ids["lisi"], "lisi", clock.now())
    async with running(db_url, clock) as bot:
        await bot.send(bot.wire.location("lisi", 31.2, 121.5, "宏达门店"))
        reply = await said(bot, "lisi", "今日拜访完成 宏达零售 1小时 客户认可方案")
        assert "已记录拜访" in reply
        async with bot.deps.db.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Activity)) == 1
        assert len(await answers(bot)) == 1


async def test_missing_parts_are_asked_one_at_a_time(db_url: str, db: Any, clock: SettableClock) -> None:
    """R16: "周会" alone asks all three; then what is missing, in order; an unreadable date is asked again."""
    ids, _ = await setup(db, clock)
    async with running(db_url, clock) as bot:
        assert "周会三句话" in await said(bot, "zhangsan", "周会")
        assert "需要谁的支持" in await said(bot, "zhangsan", "华远卡在预算")
        assert "预计什么时候" in await said(bot, "zhangsan", "李四")
        assert "没看懂预计解决的日期" in await said(bot, "zhangsan", "尽快吧")
        reply = await said(bot, "zhangsan", "周五")
        assert "需要支持：李四（李四）" in reply and "12月4日（周五）" in reply
        [row] = await answers(bot)
        assert row.stuck == "华远卡在预算" and row.support == "李四" and row.support_user_ids == [ids["lisi"]]
        assert row.resolve_by == date(2026, 12, 4) and row.raw == "周会\n华远卡在预算\n李四\n尽快吧\n周五"


async def test_support_and_date_given_first_then_stuck_is_asked(db_url: str, db: Any, clock: SettableClock) -> None:
    ids, _ = await setup(db, clock)
    async with running(db_url, clock) as bot:
        assert "卡住的 TOP3" in await said(bot, "lisi", "周会 需要王经理支持，12月10日前")
        assert "本周周会已记录" in await said(bot, "lisi", "华远物流卡在技术评估")
        [row] = await answers(bot)
        assert row.user_id == ids["lisi"] and row.stuck == "华远物流卡在技术评估"
        assert row.support == "需要王经理支持" and row.resolve_by == date(2026, 12, 10)


async def test_nothing_stuck_needs_no_more_questions(db_url: str, db: Any, clock: SettableClock) -> None:
    await setup(db, clock)
    async with running(db_url, clock) as bot:
        reply = await said(bot, "zhangsan", "周会 本周没有卡点")
        assert "卡点：本周没有卡点" in reply
        [row] = await answers(bot)
        assert row.stuck == "本周没有卡点" and row.support is None and row.resolve_by is None


async def test_a_second_answer_the_same_week_replaces_the_first(db_url: str, db: Any, clock: SettableClock) -> None:
    """R16: one row per rep and week; the latest answer wins (updated_at); next week is a new row."""
    ids, customers = await setup(db, clock)
    async with running(db_url, clock) as bot:
        await said(bot, "zhangsan", "周会 1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决")
        first = clock.now()
        clock.advance(timedelta(days=2, hours=3))  # Wednesday: still this week
        reply = await said(bot, "zhangsan", "周会 1.宏达卡在决策人 2.不需要 3.下周三")
        assert reply.startswith("✅ 本周周会已更新")
        [row] = await answers(bot)
        assert row.week == MONDAY and row.stuck == "宏达卡在决策人" and row.stuck_customer_ids == [customers["hongda"]]
        assert row.support == "不需要" and row.support_user_ids == [] and row.resolve_by == date(2026, 12, 9)
        assert row.created_at == first and row.updated_at == clock.now()
        assert row.raw == "周会 1.宏达卡在决策人 2.不需要 3.下周三"
        clock.advance(timedelta(days=5))  # Monday 7 December
        assert "本周周会已记录" in await said(bot, "zhangsan", "周会 1.宏达卡在决策人 2.王经理 3.12月20日")
        assert [(a.user_id, a.week) for a in await answers(bot)] == [(ids["zhangsan"], MONDAY),
                                                                     (ids["zhangsan"], date(2026, 12, 7))]


FORMATS = [
    "1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决",
    "1、华远卡在预算 2、需要王经理陪访 3、12月10日前解决",
    "1.华远卡在预算2.需要王经理陪访3.12月10日前解决",
    "１．华远卡在预算　２．需要王经理陪访　３．12月10日前解决",
    "①华远卡在预算 ②需要王经理陪访 ③12月10日前解决",
    "一、华远卡在预算 二、需要王经理陪访 三、12月10日前解决",
    "（1）华远卡在预算（2）需要王经理陪访（3）12月10日前解决",
    "1)华远卡在预算 2)需要王经理陪访 3)12月10日前解决",
    "第一点，华远卡在预算；第二点，需要王经理陪访；第三点，12月10日前解决",
    "\n1. 华远卡在预算\n2. 需要王经理陪访\n3. 12月10日前解决\n",
    "华远卡在预算\n需要王经理陪访\n12月10日前解决",
    "华远卡在预算；需要王经理陪访；12月10日前解决",
    "华远卡在预算。需要王经理陪访。12月10日前解决。",
    "华远卡在预算，需要王经理陪访，12月10日前解决",
    "卡点：华远卡在预算 需要支持：需要王经理陪访 预计：12月10日前解决",
    "预计：12月10日前解决；需要支持：需要王经理陪访；卡点：华远卡在预算",
    "【卡点】华远卡在预算【需要支持】需要王经理陪访【预计】12月10日前解决",
]


@pytest.mark.parametrize("body", FORMATS)
async def test_numbered_labelled_and_plain_forms_give_the_same_parts(db_url: str, db: Any, clock: SettableClock,
                                                                     body: str) -> None:
    ids, customers = await setup(db, clock)
    async with running(db_url, clock) as bot:
        assert "本周周会已记录" in await said(bot, "zhangsan", f"周会 {body}")
        [row] = await answers(bot)
        assert (row.stuck, row.support, row.resolve_by) == ("华远卡在预算", "需要王经理陪访", date(2026, 12, 10))
        assert row.stuck_customer_ids == [customers["huayuan"]] and row.support_user_ids == [ids["wangjl"]]


NOW = datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)


@pytest.mark.parametrize("body", FORMATS)
def test_split_answer_reads_every_form(body: str) -> None:
    assert split_answer(body, NOW, people=["王经理"]) == THREE_PARTS


@pytest.mark.parametrize(("body", "expected"), [
    # no separators at all: cut where the cues change
    ("华远卡在预算需要王经理陪访12月10日前解决", THREE_PARTS),
    # TOP3 numbered: the numbers list the stuck opportunities, the cues find the rest
    ("1.华远卡预算 2.宏达卡决策人 3.物流卡技术 4.需要王经理 5.12月10日",
     {Part.STUCK: "华远卡预算 2.宏达卡决策人 3.物流卡技术", Part.SUPPORT: "需要王经理", Part.RESOLVE: "12月10日"}),
    ("1.华远卡预算 2.宏达卡决策人 3.物流卡技术", {Part.STUCK: "华远卡预算 2.宏达卡决策人 3.物流卡技术"}),
    # "2.5万" is an amount, not the second part
    ("1.华远预算2.5万不够 2.需要王经理陪访 3.下周五",
     {Part.STUCK: "华远预算2.5万不够", Part.SUPPORT: "需要王经理陪访", Part.RESOLVE: "下周五"}),
    ("1.华远卡在预算 2.需要王经理陪访，12月10日前解决", THREE_PARTS),
    ("华远卡在预算 需要 小刘 帮忙 预计 12月10日",
     {Part.STUCK: "华远卡在预算", Part.SUPPORT: "需要 小刘 帮忙", Part.RESOLVE: "预计 12月10日"}),
    ("华远卡在预算\n李总\n12月10日", {Part.STUCK: "华远卡在预算", Part.SUPPORT: "李总", Part.RESOLVE: "12月10日"}),
    ("卡点:华远卡在预算，需要王经理陪访，12月10日前解决", THREE_PARTS),
    ("华远 POC 卡在 IT 部门", {Part.STUCK: "华远 POC 卡在 IT 部门"}),
    # "周一、周二" are neither markers nor the date it is solved by
    ("华远周一、周二都约不到人，需要王经理，下周五前",
     {Part.STUCK: "华远周一、周二都约不到人", Part.SUPPORT: "需要王经理", Part.RESOLVE: "下周五前"}),
    # a heading before "1." is dropped; more than a heading belongs to the first part
    ("本周三点：1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决", THREE_PARTS),
    ("华远和宏达两个商机这周都卡住了 1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决",
     {**THREE_PARTS, Part.STUCK: "华远和宏达两个商机这周都卡住了 1.华远卡在预算"}),
])
def test_split_answer_cues(body: str, expected: dict[Part, str]) -> None:
    assert split_answer(body, NOW, people=["王经理"]) == expected


def test_split_answer_gives_unmarked_text_to_the_part_asked() -> None:
    assert split_answer("技术部", NOW, Part.SUPPORT) == {Part.SUPPORT: "技术部"}
    assert split_answer("王经理，下周五前", NOW, Part.SUPPORT) == {Part.SUPPORT: "王经理", Part.RESOLVE: "下周五前"}
    assert split_answer("尽快", NOW, Part.RESOLVE) == {Part.RESOLVE: "尽快"}
    assert split_answer("…… 。", NOW) == {}


async def test_a_date_in_the_past_is_refused(db_url: str, db: Any, clock: SettableClock) -> None:
    """R16: "昨天" or "11月20日" (said on 30 November: this year's, not next year's) are asked again."""
    await setup(db, clock)
    async with running(db_url, clock) as bot:
        assert "11月29日已经过去了" in await said(bot, "zhangsan", "周会 1.华远卡在预算 2.需要王经理陪访 3.昨天")
        assert "11月20日已经过去了" in await said(bot, "zhangsan", "11月20日")
        assert "11月1日已经过去了" in await said(bot, "zhangsan", "2026年11月1日")
        assert await answers(bot) == []
        assert "12月10日（周四）" in await said(bot, "zhangsan", "12月10日")
        [row] = await answers(bot)
        assert row.resolve_by == date(2026, 12, 10) and row.support == "需要王经理陪访"


async def test_cancel_mid_flow_records_nothing(db_url: str, db: Any, clock: SettableClock) -> None:
    ids, _ = await setup(db, clock)
    await prompt(db, ids["zhangsan"], "zhangsan", clock.now())
    async with running(db_url, clock) as bot:
        assert "需要谁的支持" in await said(bot, "zhangsan", "华远卡在预算")
        assert "已取消" in await said(bot, "zhangsan", "取消")
        assert "没看懂" in await said(bot, "zhangsan", "王经理")  # no longer in the flow
        assert await answers(bot) == []
        state = await state_of(bot, "zhangsan")
        assert state is not None and state.flow is None


async def test_restart_mid_flow_continues(db_url: str, db: Any, clock: SettableClock) -> None:
    """The flow's position survives a restart: the new process asks the next question."""
    await setup(db, clock)
    async with running(db_url, clock) as bot:
        assert "需要谁的支持" in await said(bot, "zhangsan", "周会 华远卡在预算")
    async with running(db_url, clock) as bot:  # a new process
        assert "预计什么时候" in await said(bot, "zhangsan", "王经理陪访")
    clock.advance(timedelta(minutes=10))
    async with running(db_url, clock) as bot:
        assert "本周周会已记录" in await said(bot, "zhangsan", "12月10日")
        [row] = await answers(bot)
        assert (row.stuck, row.support, row.resolve_by) == ("华远卡在预算", "王经理陪访", date(2026, 12, 10))


async def test_support_people_by_name_and_by_surname_title(db_url: str, db: Any, clock: SettableClock) -> None:
    """"王总" is the one manager named 王…; with two such managers it is left out (ambiguous); names of
    people no longer active are not matched."""
    ids, _ = await setup(db, clock)
    async with running(db_url, clock) as bot:
        await said(bot, "zhangsan", "周会 1.华远卡在预算 2.需要李四和王总一起 3.12月10日")
        [row] = await answers(bot)
        assert row.support_user_ids == [ids["lisi"], ids["wangjl"]]
    async with db.transaction() as s:
        s.add(User(name="王芳", wecom_userid="wangfang", roles=["manager"], created_at=clock.now()))
        s.add(User(name="赵六", wecom_userid="zhaoliu", roles=["rep"], active=False, created_at=clock.now()))
    async with running(db_url, clock) as bot:
        reply = await said(bot, "zhangsan", "周会 1.华远卡在预算 2.需要王总、赵六和李四 3.12月10日")
        assert "需要支持：需要王总、赵六和李四（李四）" in reply
        [row] = await answers(bot)
        assert row.support_user_ids == [ids["lisi"]]


HOSTILE = [
    ("'; DROP TABLE standup_answers;--", True),
    ("华远' OR '1'='1", True),
    ("SELECT * FROM users WHERE name LIKE '%'", True),
    ("<![CDATA[x]]>", True),
    ("华远\u200b\u202e\ufeff卡在预算", True),  # zero-width and bidi controls (XML 1.0 cannot carry \x00-\x1f)
    ("华远\ue000卡在预算", True),  # private use: cleaned to a space
    ("%_%\\%", False),  # no letters: not an answer, asked again
    ("😀" * 300, False),
]


@pytest.mark.parametrize(("text", "counts"), HOSTILE)
async def test_hostile_text_is_stored_verbatim_or_asked_about(db_url: str, db: Any, clock: SettableClock,
                                                             text: str, counts: bool) -> None:
    """Bad input never breaks a query or the flow: stored as written (cleaned of controls), or asked again."""
    ids, _ = await setup(db, clock)
    await prompt(db, ids["zhangsan"], "zhangsan", clock.now())
    async with running(db_url, clock) as bot:
        assert await said(bot, "zhangsan", text)  # as a prompted answer: a question back
        await said(bot, "zhangsan", "取消")
        message = f"周会 1.{text} 2.王经理 3.12月10日"
        reply = await said(bot, "zhangsan", message)
        rows = await answers(bot)
        async with bot.deps.db.sessions() as s:
            statuses = set((await s.scalars(select(InboxMessage.status))).all())
        assert statuses == {"done"}
        if counts:
            assert "本周周会已记录" in reply and len(rows) == 1 and rows[0].raw == clean(message)
            assert rows[0].stuck is not None and rows[0].stuck in clean(text)
        else:
            assert "卡住的 TOP3" in reply and rows == []


async def test_ten_thousand_characters_are_refused(db_url: str, db: Any, clock: SettableClock) -> None:
    await setup(db, clock)
    async with running(db_url, clock) as bot:
        assert "太长了" in await said(bot, "zhangsan", "周会 " + "卡" * 10000)
        assert "需要谁的支持" in await said(bot, "zhangsan", "周会 华远卡在预算")
        assert "太长了" in await said(bot, "zhangsan", "王" * 10000)
        assert "预计什么时候" in await said(bot, "zhangsan", "王经理")
        assert await answers(bot) == []
