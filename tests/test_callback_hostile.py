"""Bad input on the callback gets a 4xx and leaves no trace: no inbox row, no outbox row, no reply."""

from __future__ import annotations

import base64
import struct

import pytest

from bot.clock import SettableClock
from tests.harness import Bot, running_bot, seed_team

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<xml><Encrypt>&lol3;</Encrypt></xml>"
)
XXE = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>'


async def assert_no_side_effect(bot: Bot) -> None:
    await bot.settle()
    assert await bot.inbox() == []
    assert await bot.outbox() == []
    assert bot.fake.delivered_count() == 0


def _raw_encrypt(bot: Bot, plaintext: bytes) -> str:
    """Encrypt arbitrary bytes as the message body (e.g. invalid UTF-8), framed like WeCom."""
    return bot.wire.crypto.encrypt(plaintext)


@pytest.mark.parametrize(
    "case",
    ["bad_signature", "wrong_corp", "wrong_agent_envelope", "wrong_agent_inner", "xxe", "billion_laughs",
     "one_mib", "invalid_utf8_inner", "not_xml", "garbage_ciphertext", "missing_query", "empty_body",
     "inner_dtd", "no_sender"],
)
async def test_hostile_callbacks(db_url: str, db, clock: SettableClock, case: str) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        w = bot.wire
        text = w.text("zhangsan", "帮助")
        expected = 400
        if case == "bad_signature":
            signed, expected = w.envelope(text, bad_signature=True), 403
        elif case == "wrong_corp":
            signed, expected = w.envelope(text, to_user="wwSOMEONEELSE"), 403
        elif case == "wrong_agent_envelope":
            signed, expected = w.envelope(text, agent_id=999), 403
        elif case == "wrong_agent_inner":
            inner = text.replace(f"<AgentID>{w.agent_id}</AgentID>", "<AgentID>999</AgentID>")
            signed, expected = w.envelope(inner), 403
        elif case == "xxe":
            signed = w.sign_raw(XXE, "&e;")
        elif case == "billion_laughs":
            signed = w.sign_raw(BILLION_LAUGHS, "&lol3;")
        elif case == "one_mib":
            body = b"<xml><Encrypt>" + b"A" * (1024 * 1024) + b"</Encrypt></xml>"
            signed, expected = w.sign_raw(body, "A" * (1024 * 1024)), 413
        elif case == "invalid_utf8_inner":
            encrypted = _raw_encrypt(bot, b"<xml><Content>\xff\xfe\xfa</Content></xml>")
            body = f"<xml><ToUserName>{w.corp_id}</ToUserName><Encrypt>{encrypted}</Encrypt></xml>".encode()
            signed = w.sign_raw(body, encrypted)
        elif case == "not_xml":
            signed = w.sign_raw(b"\xff\xfe not xml at all", "")
        elif case == "garbage_ciphertext":
            junk = base64.b64encode(struct.pack(">I", 7) * 8).decode()
            body = f"<xml><Encrypt>{junk}</Encrypt></xml>".encode()
            signed = w.sign_raw(body, junk)
        elif case == "missing_query":
            signed = w.envelope(text)
            signed.query = ""
        elif case == "empty_body":
            signed = w.sign_raw(b"", "")
        elif case == "inner_dtd":
            inner = '<!DOCTYPE x [<!ENTITY a "b">]><xml><FromUserName>&a;</FromUserName></xml>'
            signed = w.envelope(inner)
        else:  # no_sender
            signed = w.envelope("<xml><MsgType>text</MsgType><CreateTime>1</CreateTime><AgentID>218</AgentID></xml>")
        resp = await bot.post(signed)
        assert resp.status == expected, await resp.text()
        if case in ("xxe", "billion_laughs"):  # stopped by the screen, before any parser ran
            assert await resp.text() == "DTD or entity declarations are not allowed"
        await assert_no_side_effect(bot)
        assert bot.deps.metrics.total("salesbot_inbound_rejected_total") == 1


async def test_invalid_utf8_in_envelope_is_400(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    async with running_bot(db_url, clock, run_sender=False) as bot:
        body = b"<xml><Encrypt>\xc3\x28abc</Encrypt></xml>"
        resp = await bot.post(bot.wire.sign_raw(body, "\ufffd(abc"))
        assert resp.status == 400
        await assert_no_side_effect(bot)


async def test_signature_over_the_ciphertext_only(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """A valid signature for another ciphertext does not let a swapped Encrypt in."""
    async with running_bot(db_url, clock, run_sender=False) as bot:
        good = bot.wire.envelope(bot.wire.text("zhangsan", "a"))
        other = bot.wire.crypto.encrypt(bot.wire.text("zhangsan", "b"))
        body = f"<xml><Encrypt><![CDATA[{other}]]></Encrypt><AgentID>218</AgentID></xml>".encode()
        resp = await bot.post(type(good)(good.query, body))
        assert resp.status == 403
        await assert_no_side_effect(bot)


async def test_database_down_answers_503_so_wecom_retries(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert bot.deps.inbox is not None

        async def broken(rows: object) -> list[object]:
            raise ConnectionError("database unreachable")

        bot.deps.inbox._write = broken  # type: ignore[method-assign,assignment]
        resp = await bot.send(bot.wire.text("zhangsan", "帮助"))
        assert resp.status == 503


async def test_utf16_body_cannot_sidestep_the_screen(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    async with running_bot(db_url, clock, run_sender=False) as bot:
        resp = await bot.post(bot.wire.sign_raw(XXE.decode().encode("utf-16"), "&e;"))
        assert resp.status == 400 and await resp.text() == "body is not UTF-8"
        await assert_no_side_effect(bot)


async def test_chunked_body_over_the_cap_is_413(db_url: str, db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    """No Content-Length (chunked transfer): the cap still applies while reading."""
    async with running_bot(db_url, clock, run_sender=False) as bot:
        signed = bot.wire.envelope(bot.wire.text("zhangsan", "x"))

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(40):
                yield b"<!-- " + b"x" * 4096 + b" -->"

        resp = await bot.client.post(f"/wecom/callback?{signed.query}", data=chunks())
        assert resp.status == 413
        await assert_no_side_effect(bot)
