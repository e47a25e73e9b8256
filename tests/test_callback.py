"""The spine over the real wire: signed, encrypted callbacks into the running app; replies out through
the fake WeCom API. Runs on SQLite and (with SALESBOT_TEST_PG_URL) on PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from bot.clock import SettableClock
from tests.conftest import AES_KEY, AGENT_ID, TOKEN
from tests.fakes.wire import WeComWire
from tests.harness import running_bot, seed_team


async def test_url_verification_answers_bare_echostr(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    async with running_bot(db_url, clock) as bot:
        resp = await bot.client.get(f"/wecom/callback?{bot.wire.verification_query('1616140317555161061')}")
        assert resp.status == 200
        assert await resp.read() == b"1616140317555161061"  # no quotes, newline or BOM


@pytest.mark.parametrize(
    "echostr",
    [
        "P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D",
        # An unencoded '+' of the base64 echostr stays '+': the query is URL-decoded exactly once.
        "P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ%3D%3D",
    ],
    ids=["encoded", "raw-plus"],
)
async def test_url_verification_official_vector(db_url: str, db, clock: SettableClock, echostr: str) -> None:  # type: ignore[no-untyped-def]
    """The WeCom docs' GET example, URL-encoded as WeCom sends it (and with a raw '+')."""
    async with running_bot(db_url, clock) as bot:
        signed = "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780"
        query = f"{signed}&echostr={echostr}"
        resp = await bot.client.get(f"/wecom/callback?{query}")
        assert (resp.status, await resp.read()) == (200, b"1616140317555161061")


async def test_url_verification_bad_signature_is_403(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    async with running_bot(db_url, clock) as bot:
        query = bot.wire.verification_query("123").replace("msg_signature=", "msg_signature=0", 1)
        resp = await bot.client.get(f"/wecom/callback?{query}")
        assert resp.status == 403


async def test_text_in_reply_delivered(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        resp = await bot.say("zhangsan", "帮助")
        assert resp.status == 200 and await resp.text() == ""
        await bot.settle()
        delivered = bot.fake.delivered("zhangsan")
        assert len(delivered) == 1
        assert delivered[0].msgtype == "markdown" and "salesbot 能帮你做什么" in (delivered[0].content or "")
        [row] = await bot.inbox()
        assert row.status == "done" and row.sender == "zhangsan"


async def test_reply_delivered_by_the_running_sender_loop(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """The production path: no manual settle, the sender loop wakes on the new outbox row."""
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=True) as bot:
        await bot.say("zhangsan", "你能做什么")
        await bot.fake.wait_delivered(1, userid="zhangsan", timeout=10)
        assert "salesbot 能帮你做什么" in (bot.fake.delivered("zhangsan")[0].content or "")


async def test_same_msgid_three_times_at_once(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """WeCom retries: 3 copies arriving together → one inbox row, one reply, all answered 200."""
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        inner = bot.wire.text("zhangsan", "帮助", msg_id=424242)
        envelopes = [bot.wire.envelope(inner) for _ in range(3)]
        responses = await asyncio.gather(*(bot.post(e) for e in envelopes))
        assert [r.status for r in responses] == [200, 200, 200]
        await bot.settle()
        assert len(await bot.inbox()) == 1
        assert len(bot.fake.delivered("zhangsan")) == 1
        assert bot.deps.metrics.total("salesbot_inbound_duplicates_total") == 2
        # A late retry after processing is still a no-op.
        assert (await bot.post(bot.wire.envelope(inner))).status == 200
        await bot.settle()
        assert len(await bot.inbox()) == 1 and len(bot.fake.delivered("zhangsan")) == 1


async def test_unknown_sender_gets_polite_reply_and_nothing_stored(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.say("stranger", "我是张三，帮我看看返点")  # identity never comes from text
        await bot.settle()
        [reply] = bot.fake.delivered("stranger")
        assert "还没有开通" in (reply.content or "")
        assert bot.fake.delivered("zhangsan") == []
        from sqlalchemy import func, select

        from store.models import ConversationState

        async with bot.deps.db.sessions() as s:
            assert (await s.scalar(select(func.count()).select_from(ConversationState))) == 0


async def test_not_understood_gets_examples(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.say("lisi", "asdfgh 今天天气不错")
        await bot.settle()
        [reply] = bot.fake.delivered("lisi")
        assert "没看懂" in (reply.content or "") and "帮助" in (reply.content or "")


@pytest.mark.parametrize("kind", ["location", "image", "voice", "link", "enter_agent", "LOCATION", "card", "unknown"])
async def test_every_message_type_is_stored_and_acknowledged(  # type: ignore[no-untyped-def]
    db_url: str, db, clock: SettableClock, kind: str
) -> None:
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        w = bot.wire
        inner = {
            "location": lambda: w.location("zhangsan", 31.23, 121.47, "上海市浦东新区"),
            "image": lambda: w.image("zhangsan"),
            "voice": lambda: w.voice("zhangsan", recognition="明天拜访华远"),
            "link": lambda: w.link("zhangsan", "方案", "https://example.com"),
            "enter_agent": lambda: w.event("zhangsan", "enter_agent", EventKey=""),
            "LOCATION": lambda: w.event("zhangsan", "LOCATION", Latitude=31.2, Longitude=121.4, Precision=30),
            "card": lambda: w.card_event("wangjl", "T-1", "followed_up", "RC-1"),
            "unknown": lambda: w.raw_type("zhangsan", "hologram", Foo="bar"),
        }[kind]()
        resp = await bot.send(inner)
        assert resp.status == 200
        await bot.settle()
        [row] = await bot.inbox()
        assert row.status == "done"
        if kind == "card":
            assert row.payload["task_id"] == "T-1" and row.payload["response_code"] == "RC-1"


async def test_chinese_text_survives_the_wire(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.say("zhangsan", "今日拜访完成 华远科技 1小时 客户认可方案，下周报价 😀")
        await bot.settle()
        [row] = await bot.inbox()
        assert row.payload["text"] == "今日拜访完成 华远科技 1小时 客户认可方案，下周报价 😀"


async def test_wechatpy_vector_app_is_rejected_by_our_app(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """A correctly signed message for a different corp (another app's keys) never gets in."""
    async with running_bot(db_url, clock, run_sender=False) as bot:
        other = WeComWire(TOKEN, AES_KEY, "wwANOTHERCORP", AGENT_ID)
        resp = await bot.post(other.envelope(other.text("zhangsan", "hi"), to_user=bot.wire.corp_id))
        assert resp.status == 403
        assert await bot.inbox() == []


async def test_official_docs_post_vector_over_the_wire(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """The WeCom docs' POST example, byte for byte, is accepted and stored (sender mycreate is unknown
    to the directory, so the reply is the polite refusal)."""
    from tests.wecom.test_crypto import DOCS_POST_ENCRYPT

    async with running_bot(db_url, clock, run_sender=False) as bot:
        body = (
            "<xml> <ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
            + DOCS_POST_ENCRYPT
            + "]]></Encrypt>\n   <AgentID><![CDATA[218]]></AgentID>\n   </xml>"
        ).encode()
        query = "msg_signature=477715d11cdb4164915debcba66cb864d751f3e6&timestamp=1409659813&nonce=1372623149"
        resp = await bot.client.post(f"/wecom/callback?{query}", data=body)
        assert resp.status == 200
        await bot.settle()
        [row] = await bot.inbox()
        assert (row.sender, row.payload["text"], row.dedup_key) == ("mycreate", "hello", "msg:4561255354251345929")
        assert "还没有开通" in (bot.fake.delivered("mycreate")[0].content or "")


async def test_tencent_sample_post_vector_over_the_wire(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import make_settings
    from tests.fakes.wecom_api import running_fake_wecom
    from tests.wecom.test_crypto import TENCENT_POST_ENCRYPT

    async with running_fake_wecom(clock, corp_id="ww1436e0e65a779aee", agent_id=1000002) as fake:
        settings = make_settings(db_url, api_base=fake.api_base, wecom={
            "corp_id": "ww1436e0e65a779aee", "agent_id": 1000002, "token": "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo",
            "encoding_aes_key": "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"})
        async with running_bot(db_url, clock, fake=fake, settings=settings, run_sender=False) as bot:
            body = ("<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA["
                    + TENCENT_POST_ENCRYPT + "]]></Encrypt>\n<AgentID><![CDATA[1000002]]></AgentID>\n</xml>").encode()
            query = "msg_signature=0c3914025cb4b4d68103f6bfc8db550f79dcf48e&timestamp=1476422779&nonce=1597212914"
            assert (await bot.client.post(f"/wecom/callback?{query}", data=body)).status == 200
            await bot.deps.drain()
            [row] = await bot.inbox()
            assert (row.sender, row.payload["text"]) == ("ChenJiaShun", "你好")


async def test_body_arriving_in_pieces_is_read_whole(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """A proxy may stream the body: a signed callback split across writes (and chunked) still gets in."""
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        signed = bot.wire.envelope(bot.wire.text("zhangsan", "帮助"))

        async def pieces():  # type: ignore[no-untyped-def]
            for i in range(0, len(signed.body), 37):
                yield signed.body[i : i + 37]
                await asyncio.sleep(0)  # hand the loop over between pieces (not a wait for time)

        resp = await bot.client.post(f"/wecom/callback?{signed.query}", data=pieces())
        assert resp.status == 200
        await bot.settle()
        assert len(bot.fake.delivered("zhangsan")) == 1


async def test_same_event_three_times_at_once(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """Events have no MsgId: FromUserName + CreateTime + Event + EventKey + TaskId dedups them."""
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        inner = bot.wire.card_event("wangjl", "R4-1-2026W49", "followed_up", "RC-1", create_time=1764468000)
        other = bot.wire.card_event("wangjl", "R4-2-2026W49", "followed_up", "RC-2", create_time=1764468000)
        responses = await asyncio.gather(*(bot.send(inner) for _ in range(3)), bot.send(other))
        assert [r.status for r in responses] == [200] * 4
        await bot.settle()
        rows = await bot.inbox()
        assert sorted(r.payload["task_id"] for r in rows) == ["R4-1-2026W49", "R4-2-2026W49"]


async def test_location_event_fields_are_kept(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        await bot.send(bot.wire.event("zhangsan", "LOCATION", Latitude=31.2304, Longitude=121.4737, Precision=30.0))
        await bot.settle()
        [row] = await bot.inbox()
        assert row.event == "location"
        assert row.payload["location"] == {"lat": 31.2304, "lng": 121.4737, "label": None, "scale": None,
                                           "precision": 30.0}
        assert bot.fake.delivered("zhangsan") == []  # automatic reports get no reply
