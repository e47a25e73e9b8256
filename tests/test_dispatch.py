"""Dispatcher, routers and persisted flow state, through the real wire with a test flow."""

from __future__ import annotations

from datetime import timedelta

from bot.channels.base import Reply, Text
from bot.clock import SettableClock
from bot.dispatch.context import Context
from bot.dispatch.filters import Command, InFlow, MsgType, Regex, normalize
from bot.dispatch.router import Router
from handlers import fallback
from tests.fakes.wecom_api import running_fake_wecom
from tests.harness import running_bot, seed_team


def survey_router() -> Router:
    """A two-step flow: state filters first, then intents, then the product's fallback."""
    from bot.dispatch.router import HelpEntry
    from handlers import help

    flows, root = Router("flows"), Router("root")
    intents = Router("intents", help=(HelpEntry("做个小调查", "开始"),))

    @flows.handle(MsgType("text"), Command("取消"))
    async def cancel(ctx: Context) -> Reply:
        ctx.state.clear()
        return Text("已取消")

    @flows.handle(MsgType("text"), InFlow("survey", "ask_customer"))
    async def got_customer(ctx: Context) -> Reply:
        ctx.state.set("survey", "ask_minutes", customer=ctx.message.text)
        return Text("多长时间？")

    @flows.handle(MsgType("text"), InFlow("survey", "ask_minutes"), Regex(r"^(?P<minutes>\d+)"))
    async def got_minutes(ctx: Context, minutes: str) -> Reply:
        customer = ctx.state.data["customer"]
        ctx.state.clear()
        return Text(f"记下了：{customer} {minutes}分钟")

    @intents.handle(MsgType("text"), Command("开始"))
    async def start(ctx: Context) -> Reply:
        ctx.state.set("survey", "ask_customer")
        return Text("哪个客户？")

    offered = Router("offered")
    offered.include(flows, intents)
    root.include(help.make_router(offered), offered, fallback.router)
    return root


async def replies(bot, userid: str) -> list[str]:  # type: ignore[no-untyped-def]
    await bot.settle()
    return [m.content or "" for m in bot.fake.delivered(userid)]


async def test_flow_survives_a_restart(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_fake_wecom(clock) as fake:
        async with running_bot(db_url, clock, fake=fake, run_sender=False, router=survey_router()) as bot:
            await bot.say("zhangsan", "开始")
            await bot.say("zhangsan", "华远科技")
            assert await replies(bot, "zhangsan") == ["哪个客户？", "多长时间？"]
        clock.advance(minutes=5)
        async with running_bot(db_url, clock, fake=fake, run_sender=False, router=survey_router()) as bot:
            await bot.say("zhangsan", "45 分钟")
            assert (await replies(bot, "zhangsan"))[-1] == "记下了：华远科技 45分钟"


async def test_flows_are_per_user_and_cancellable(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False, router=survey_router()) as bot:
        await bot.say("zhangsan", "开始")
        await bot.say("lisi", "华远科技")  # lisi is in no flow: the fallback answers
        await bot.say("zhangsan", "取消")
        await bot.say("zhangsan", "华远科技")
        got = await replies(bot, "zhangsan")
        assert got[:2] == ["哪个客户？", "已取消"] and "没看懂" in got[2]
        assert "没看懂" in (await replies(bot, "lisi"))[0]


async def test_flow_state_expires(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False, router=survey_router()) as bot:
        await bot.say("zhangsan", "开始")
        await bot.settle()
        clock.advance(timedelta(minutes=bot.deps.settings.conversation.state_ttl_minutes, seconds=1))
        await bot.say("zhangsan", "华远科技")
        assert "没看懂" in (await replies(bot, "zhangsan"))[-1]


async def test_crash_leftovers_of_a_conversation_are_handled_before_its_new_message(  # type: ignore[no-untyped-def]
    db_url: str, db, clock: SettableClock
) -> None:
    """After a crash, "华远科技" is still pending when "45" arrives: the older message goes first."""
    import pytest

    from bot.deps import Deps

    await seed_team(db, clock)
    async with running_fake_wecom(clock) as fake:
        async with running_bot(db_url, clock, fake=fake, run_sender=False, router=survey_router()) as bot:
            await bot.say("zhangsan", "开始")
            await bot.settle()
        crash = pytest.MonkeyPatch()
        crash.setattr(Deps, "process_later", lambda self, *row: None)
        async with running_bot(db_url, clock, fake=fake, run_sender=False, router=survey_router()) as bot:
            crash.undo()
            await bot.say("zhangsan", "华远科技")  # stored, never processed
        async with running_bot(db_url, clock, fake=fake, run_sender=False, router=survey_router(),
                               recover_on_start=False) as bot:
            await bot.say("zhangsan", "45")
            assert await replies(bot, "zhangsan") == ["哪个客户？", "多长时间？", "记下了：华远科技 45分钟"]


async def test_conversation_lock_serialises_one_key_only() -> None:
    import asyncio

    from bot.dispatch.dispatcher import _ConversationLocks

    locks, log = _ConversationLocks(), []
    gate = asyncio.Event()

    async def work(name: str) -> None:
        log.append(f"{name}+")
        if name == "a1":
            await gate.wait()
        log.append(f"{name}-")

    tasks = [asyncio.create_task(locks.run(key, lambda n=name: work(n)))
             for key, name in ((("w", "a"), "a1"), (("w", "a"), "a2"), (("w", "b"), "b1"))]
    await asyncio.sleep(0)  # let them start (not a wait for time: one loop turn)
    await asyncio.sleep(0)
    assert log == ["a1+", "b1+", "b1-"]  # a2 waits behind a1; b1 (another user) does not
    gate.set()
    await asyncio.gather(*tasks)
    assert log[3:] == ["a1-", "a2+", "a2-"]
    assert locks.locks == {}  # nothing kept once nobody holds or waits


async def test_nested_routers_first_match_wins() -> None:
    a, b, root = Router("a"), Router("b"), Router("root")
    hits: list[str] = []

    @a.handle(Regex(r"^x"))
    async def ha(ctx: Context) -> None:
        hits.append("a")

    @b.handle(Regex(r"^x"))
    async def hb(ctx: Context) -> None:
        hits.append("b")

    root.include(a, b)
    from bot.channels.base import IncomingMessage
    from tests.conftest import START

    class Ctx:  # only what filters read
        message = IncomingMessage("local", "k", "u", "text", START, text="xyz")

    found = await root.resolve(Ctx())  # type: ignore[arg-type]
    assert found is not None and found[0] is ha


def test_normalize_handles_full_width_and_noise() -> None:
    assert normalize("  ＨＥＬＰ\u3000 帮助\x07 ") == "help 帮助"


async def test_help_words_including_question_marks(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        for word in ("帮助", "？", "?", "help!", "ＨＥＬＰ", " 菜单 "):
            await bot.say("zhangsan", word)
        got = await replies(bot, "zhangsan")
        assert len(got) == 6 and all("salesbot 能帮你做什么" in g for g in got)


async def test_help_lists_exactly_what_is_routed(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False, router=survey_router()) as bot:
        await bot.say("zhangsan", "帮助")
        [text] = await replies(bot, "zhangsan")
        assert "**做个小调查**：开始" in text and "**退出正在进行的对话**：取消" in text
        assert "返点" not in text  # nothing that is not built yet
