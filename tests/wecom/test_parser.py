"""Inner-message parsing: every type we handle, template_card_event, dedup keys, hostile XML."""

from __future__ import annotations

import pytest

from bot.channels.wecom.parser import XmlError, dedup_key, parse_flat, reject_declarations, to_incoming
from tests.conftest import AES_KEY, AGENT_ID, CORP_ID, TOKEN
from tests.fakes.wire import WeComWire

WIRE = WeComWire(TOKEN, AES_KEY, CORP_ID, AGENT_ID)


def parse(xml: str):  # type: ignore[no-untyped-def]
    return to_incoming(parse_flat(xml))


def test_text() -> None:
    msg = parse(WIRE.text("zhangsan", "今日拜访完成 华远科技", msg_id=123))
    assert (msg.msg_type, msg.sender, msg.text) == ("text", "zhangsan", "今日拜访完成 华远科技")
    assert msg.dedup_key == "msg:123"
    assert msg.agent_id == str(AGENT_ID)


def test_location_message() -> None:
    msg = parse(WIRE.location("zhangsan", 31.2304, 121.4737, "上海市浦东新区"))
    assert msg.location is not None
    assert (msg.location.lat, msg.location.lng, msg.location.label) == (31.2304, 121.4737, "上海市浦东新区")


def test_image_voice_link() -> None:
    assert parse(WIRE.image("a", "M1")).media_id == "M1"
    voice = parse(WIRE.voice("a", "V1", recognition="明天去华远"))
    assert (voice.media_id, voice.recognition, voice.media_format) == ("V1", "明天去华远", "amr")
    link = parse(WIRE.link("a", "方案", "https://example.com/p"))
    assert (link.link_title, link.link_url) == ("方案", "https://example.com/p")


def test_location_event_and_enter_agent() -> None:
    ev = parse(WIRE.event("a", "LOCATION", Latitude=23.1, Longitude=113.3, Precision=20.0))
    assert ev.event == "location" and ev.location is not None and ev.location.lat == 23.1
    enter = parse(WIRE.event("a", "enter_agent", EventKey=""))
    assert enter.event == "enter_agent" and enter.msg_id is None


def test_template_card_event_is_parsed() -> None:
    """wechatpy does not parse this event; we read EventKey, TaskId, CardType and ResponseCode."""
    msg = parse(WIRE.card_event("manager1", "R4-17-2026W49", "followed_up", "RC-abc"))
    assert msg.event == "template_card_event"
    assert (msg.event_key, msg.task_id, msg.card_type, msg.response_code) == (
        "followed_up", "R4-17-2026W49", "button_interaction", "RC-abc")


def test_event_dedup_key_includes_event_key_and_task() -> None:
    """Two different events in the same second from one user are two rows (FACTS 4)."""
    a = parse(WIRE.card_event("m", "T1", "a", "rc1", create_time=100))
    b = parse(WIRE.card_event("m", "T2", "a", "rc2", create_time=100))
    c = parse(WIRE.card_event("m", "T1", "b", "rc3", create_time=100))
    assert len({a.dedup_key, b.dedup_key, c.dedup_key}) == 3
    # Separators cannot make two different events collide; long keys stay short.
    k1 = dedup_key({"MsgType": "event", "FromUserName": "m", "CreateTime": "1", "EventKey": "a|", "TaskId": "T"})
    k2 = dedup_key({"MsgType": "event", "FromUserName": "m", "CreateTime": "1", "EventKey": "a", "TaskId": "|T"})
    k3 = dedup_key({"MsgType": "event", "FromUserName": "m", "CreateTime": "1", "EventKey": "k" * 1024})
    assert k1 != k2 and len(k3) <= 255


def test_unknown_type_is_kept() -> None:
    msg = parse(WIRE.raw_type("a", "miniprogram_notice", Foo="bar"))
    assert msg.msg_type == "miniprogram_notice" and msg.extra["Foo"] == "bar"


def test_payload_round_trip() -> None:
    from bot.channels.base import IncomingMessage

    msg = parse(WIRE.location("zhangsan", 31.2, 121.4, "x"))
    assert IncomingMessage.from_payload(msg.to_payload()) == msg


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><xml><a>&a;</a></xml>',
        b'<!doctype xml SYSTEM "file:///etc/passwd"><xml/>',
        b"<xml><!ENTITY x SYSTEM 'http://evil'></xml>",
    ],
)
def test_declarations_rejected_before_parsing(body: bytes) -> None:
    with pytest.raises(XmlError):
        reject_declarations(body)


@pytest.mark.parametrize(
    "xml",
    [
        "<xml><a>unclosed</xml>",
        "<notxml><a>1</a></notxml>",
        '<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><a>&a;</a></xml>',
        "",
    ],
)
def test_malformed_or_hostile_inner_xml(xml: str) -> None:
    with pytest.raises(XmlError):
        parse_flat(xml)


def test_user_text_may_contain_doctype_inside_cdata() -> None:
    """A rep may type anything; inside CDATA it is text, not a declaration."""
    msg = parse(WIRE.text("a", "<!DOCTYPE 不是攻击> ]]> 也可以"))
    assert msg.text == "<!DOCTYPE 不是攻击> ]]> 也可以"


@pytest.mark.parametrize(
    "fields",
    [
        {"MsgType": "text"},  # no sender
        {"FromUserName": "a", "MsgType": "text", "CreateTime": "abc"},
        {"FromUserName": "a", "CreateTime": "1"},  # no type
    ],
)
def test_missing_envelope_fields(fields: dict[str, str]) -> None:
    with pytest.raises(XmlError):
        to_incoming(fields)
