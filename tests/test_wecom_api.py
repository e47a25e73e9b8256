"""WeComClient against the fake WeCom API over real HTTP: token cache and refresh, error typing,
directory, media, card updates; and the fake's own WeCom behaviours the sender tests rely on."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest

from bot.channels.wecom.api import ApiNetworkError, ApiTokenError, WeComApiError, WeComClient
from bot.clock import SettableClock
from bot.metrics import Metrics
from tests.conftest import AGENT_ID, SECRET, make_settings
from tests.fakes.wecom_api import FakeWeCom, Fault


def make_client(
    http: aiohttp.ClientSession,
    fake: FakeWeCom,
    clock: SettableClock,
    *,
    metrics: Metrics | None = None,
    wecom: dict[str, Any] | None = None,
) -> WeComClient:
    settings = make_settings("sqlite+aiosqlite:///unused.db", api_base=fake.api_base, wecom=wecom or {})
    return WeComClient(http, settings.wecom, clock, metrics or Metrics())


@pytest.fixture
def client(http: aiohttp.ClientSession, fake: FakeWeCom, clock: SettableClock) -> WeComClient:
    return make_client(http, fake, clock)


def text(to: str, content: str, **extra: Any) -> dict[str, Any]:
    return {"touser": to, "msgtype": "text", "agentid": AGENT_ID, "text": {"content": content}, **extra}


# ---------------------------------------------------------------- token


async def test_token_cached_then_refreshed_early(
    client: WeComClient, fake: FakeWeCom, clock: SettableClock
) -> None:
    for i in range(5):
        assert (await client.send_message(text("zhangsan", f"m{i}"))).ok
    assert fake.gettoken_calls == 1
    first = fake.requests("message/send")[0].query["access_token"]

    clock.advance(seconds=7200 - 300 - 1)  # just inside the refresh margin
    assert (await client.send_message(text("zhangsan", "later"))).ok
    assert fake.gettoken_calls == 1

    clock.advance(seconds=2)  # past expires_in - token_refresh_margin_s: refreshed early
    assert (await client.send_message(text("zhangsan", "early refresh"))).ok
    assert fake.gettoken_calls == 2
    # WeCom hands back the same, still valid token when asked early; it is used to its end ...
    assert fake.requests("message/send")[-1].query["access_token"] == first
    assert (await client.send_message(text("zhangsan", "same token"))).ok
    assert fake.gettoken_calls == 2

    clock.advance(seconds=300)  # ... then a new one
    assert (await client.send_message(text("zhangsan", "new token"))).ok
    assert fake.requests("message/send")[-1].query["access_token"] != first
    assert fake.delivered_count("zhangsan") == 9


async def test_twenty_concurrent_sends_fetch_one_token(client: WeComClient, fake: FakeWeCom) -> None:
    results = await asyncio.gather(*(client.send_message(text(f"u{i}", "hi")) for i in range(20)))
    assert all(r.ok for r in results)
    assert fake.gettoken_calls == 1
    assert fake.delivered_count() == 20


@pytest.mark.parametrize("failure", [Fault.HTTP_502, {"errcode": -1, "errmsg": "system busy"}])
async def test_concurrent_callers_share_one_failed_gettoken(
    client: WeComClient, fake: FakeWeCom, failure: Fault | dict[str, Any]
) -> None:
    fake.script("gettoken", [failure])
    results = await asyncio.gather(
        *(client.send_message(text(f"u{i}", "hi")) for i in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, ApiNetworkError | ApiTokenError) for r in results)
    assert len(fake.requests("gettoken")) == 1  # queued callers take the failure, not a retry each
    assert not fake.requests("message/send")
    assert (await client.send_message(text("u0", "later"))).ok  # the next call fetches again
    assert len(fake.requests("gettoken")) == 2


async def test_token_expired_mid_burst_refreshes_once_and_delivers_once(
    client: WeComClient, fake: FakeWeCom
) -> None:
    assert (await client.send_message(text("warm", "up"))).ok
    fake.expire_tokens()  # WeCom may end a token early: every call with it now gets 42001
    results = await asyncio.gather(*(client.send_message(text(f"u{i}", f"m{i}")) for i in range(20)))
    assert all(r.ok for r in results)
    assert fake.gettoken_calls == 2  # one refresh for twenty refusals
    assert [r.json()["touser"] for r in fake.requests("message/send")].count("u7") == 2  # refused, resent
    for i in range(20):
        assert [m.content for m in fake.delivered(f"u{i}")] == [f"m{i}"]


async def test_invalid_token_40014_refreshes_once(client: WeComClient, fake: FakeWeCom) -> None:
    assert (await client.send_message(text("zhangsan", "one"))).ok
    fake.revoke_tokens()
    result = await client.send_message(text("zhangsan", "two"))
    assert result.ok
    assert fake.gettoken_calls == 2
    assert [m.content for m in fake.delivered("zhangsan")] == ["one", "two"]


async def test_token_refused_twice_is_returned_not_looped(client: WeComClient, fake: FakeWeCom) -> None:
    fake.script(
        "message/send", [{"errcode": 42001, "errmsg": "expired"}, {"errcode": 42001, "errmsg": "expired"}]
    )
    result = await client.send_message(text("zhangsan", "x"))
    assert result.errcode == 42001
    assert fake.gettoken_calls == 2
    assert len(fake.requests("message/send")) == 2


@pytest.mark.parametrize(
    ("wecom", "errcode"),
    [({"secret": "wrong-secret-0000"}, 40001), ({"corp_id": "wx0000000000000000"}, 40013)],
)
async def test_gettoken_refused_raises_without_leaking_the_secret(
    http: aiohttp.ClientSession,
    fake: FakeWeCom,
    clock: SettableClock,
    caplog: pytest.LogCaptureFixture,
    wecom: dict[str, str],
    errcode: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(http, fake, clock, wecom=wecom)
    with pytest.raises(ApiTokenError) as info:
        await client.send_message(text("zhangsan", "x"))
    assert info.value.result.errcode == errcode
    assert not fake.requests("message/send")
    secret = wecom.get("secret", SECRET)
    assert secret not in caplog.text and secret not in str(info.value)


# ---------------------------------------------------------------- transport failures


@pytest.mark.parametrize(
    ("fault", "status"),
    [(Fault.DROP, None), (Fault.HTTP_502, 502), (Fault.NOT_JSON, 200), (Fault.HANG, None)],
)
async def test_transport_failures_raise_network_error(
    http: aiohttp.ClientSession,
    fake: FakeWeCom,
    clock: SettableClock,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    status: int | None,
) -> None:
    caplog.set_level(logging.DEBUG)
    metrics = Metrics()
    # A short timeout so HANG ends quickly (the only wall-clock wait in these tests).
    client = make_client(http, fake, clock, metrics=metrics, wecom={"request_timeout_s": 0.2})
    fake.script("message/send", [fault])
    with pytest.raises(ApiNetworkError) as info:
        await client.send_message(text("zhangsan", "x"))
    assert info.value.status == status
    token = await client.get_token()
    assert token not in str(info.value) and token not in caplog.text and SECRET not in caplog.text
    assert metrics.value("salesbot_wecom_api_requests_total", endpoint="message/send", outcome="network") == 1
    assert fake.delivered_count() == 0
    assert (await client.send_message(text("zhangsan", "after"))).ok  # the client is still usable


# ---------------------------------------------------------------- the fake's WeCom behaviours


async def test_fake_truncates_text_past_2048_bytes(client: WeComClient, fake: FakeWeCom) -> None:
    assert (await client.send_message(text("zhangsan", "销" * 1000))).ok  # 3000 bytes
    [message] = fake.delivered("zhangsan")
    assert message.content is not None
    assert len(message.content.encode()) == 2046 and message.content == "销" * 682


async def test_fake_duplicate_check_drops_same_request_within_interval(
    client: WeComClient, fake: FakeWeCom, clock: SettableClock
) -> None:
    body = text("zhangsan", "日报已收到", enable_duplicate_check=1, duplicate_check_interval=600)
    first, second = await client.send_message(body), await client.send_message(body)
    assert first.ok and second.ok and first.data["msgid"] == second.data["msgid"]
    assert fake.delivered_count("zhangsan") == 1 and len(fake.duplicates) == 1
    clock.advance(seconds=601)
    assert (await client.send_message(body)).ok
    assert fake.delivered_count("zhangsan") == 2


async def test_fake_duplicate_check_compares_the_whole_request(client: WeComClient, fake: FakeWeCom) -> None:
    """The same words with another duplicate_check_interval are another request JSON: delivered (the
    outbox sender relies on this to keep identical replies apart)."""
    first = text("zhangsan", "好的，已记录", enable_duplicate_check=1, duplicate_check_interval=3600)
    second = {**first, "duplicate_check_interval": 3599}
    assert (await client.send_message(first)).ok and (await client.send_message(second)).ok
    assert [m.content for m in fake.delivered("zhangsan")] == ["好的，已记录", "好的，已记录"]
    assert fake.duplicates == []
    assert (await client.send_message(second)).ok  # ... while a resend of either is still dropped
    assert fake.delivered_count("zhangsan") == 2 and len(fake.duplicates) == 1


async def test_fake_silently_drops_past_30_a_minute(
    client: WeComClient, fake: FakeWeCom, clock: SettableClock
) -> None:
    results = [await client.send_message(text("zhangsan", f"m{i}")) for i in range(31)]
    assert all(r.ok for r in results)  # WeCom says ok ...
    assert fake.delivered_count("zhangsan") == 30  # ... and drops the 31st
    assert [m.content for m in fake.dropped("zhangsan")] == ["m30"]
    clock.advance(seconds=60)
    assert (await client.send_message(text("zhangsan", "next minute"))).ok
    assert fake.delivered_count("zhangsan") == 31


async def test_fake_rejects_unknown_recipients_with_81013(client: WeComClient, fake: FakeWeCom) -> None:
    fake.set_directory([{"id": 1, "name": "公司", "parentid": 0, "order": 1}], [_user("zhangsan", [1])])
    assert (await client.send_message(text("ghost", "x"))).errcode == 81013
    partial = await client.send_message(text("zhangsan|Ghost", "x"))
    assert partial.ok and partial.data["invaliduser"] == "ghost"


async def test_wrong_agentid_and_msgtype_are_platform_errors(client: WeComClient) -> None:
    assert (await client.send_message({**text("zhangsan", "x"), "agentid": 1})).errcode == 40056
    assert (await client.send_message({**text("zhangsan", "x"), "msgtype": "fax"})).errcode == 40008


# ---------------------------------------------------------------- template cards


def _card(task_id: str) -> dict[str, Any]:
    return {
        "card_type": "button_interaction",
        "main_title": {"title": "商机停滞提醒"},
        "task_id": task_id,
        "button_list": [{"text": "已跟进", "key": "done"}, {"text": "延后", "key": "snooze"}],
    }


async def test_update_template_card_response_code_is_single_use(
    client: WeComClient, fake: FakeWeCom, clock: SettableClock
) -> None:
    sent = await client.send_message(
        {"touser": "zhangsan", "msgtype": "template_card", "agentid": AGENT_ID, "template_card": _card("t1")}
    )
    assert sent.ok
    code = sent.data["response_code"]
    assert fake.delivered("zhangsan")[0].response_code == code
    update = {
        "userids": ["zhangsan"],
        "agentid": AGENT_ID,
        "response_code": code,
        "button": {"replace_name": "已处理"},
    }
    assert (await client.update_template_card(update)).ok
    assert fake.card_updates[-1]["button"] == {"replace_name": "已处理"}
    assert (await client.update_template_card(update)).errcode == 40035  # used

    again = await client.send_message(
        {"touser": "zhangsan", "msgtype": "template_card", "agentid": AGENT_ID, "template_card": _card("t1")}
    )
    assert again.errcode == 42014  # task_id must be unique

    late = fake.issue_response_code(["zhangsan"])
    clock.advance(hours=25)
    assert (await client.update_template_card({**update, "response_code": late})).errcode == 40035  # expired


# ---------------------------------------------------------------- directory and media


def _user(userid: str, departments: list[int], leader: list[str] | None = None) -> dict[str, Any]:
    return {
        "userid": userid,
        "name": userid.upper(),
        "department": departments,
        "is_leader_in_dept": [0] * len(departments),
        "direct_leader": leader or [],
        "mobile": "13800000000",
        "email": f"{userid}@example.com",
        "status": 1,
    }


async def test_department_and_user_list(client: WeComClient, fake: FakeWeCom) -> None:
    departments = [
        {"id": 1, "name": "公司", "parentid": 0, "order": 1, "department_leader": []},
        {"id": 2, "name": "华东区", "parentid": 1, "order": 1, "department_leader": ["boss"]},
        {"id": 3, "name": "上海一组", "parentid": 2, "order": 1, "department_leader": []},
        {"id": 4, "name": "华南区", "parentid": 1, "order": 2, "department_leader": []},
    ]
    boss = {**_user("boss", [2]), "is_leader_in_dept": [1]}
    fake.set_directory(departments, [boss, _user("rep1", [3], ["boss"]), _user("rep2", [4])])

    everything = await client.department_list()
    assert [d["id"] for d in everything.data["department"]] == [1, 2, 3, 4]
    east = await client.department_list(2)
    assert [d["id"] for d in east.data["department"]] == [2, 3]

    direct = await client.user_list(2)
    assert [u["userid"] for u in direct.data["userlist"]] == ["boss"]
    tree = await client.user_list(2, fetch_child=True)
    users = {u["userid"]: u for u in tree.data["userlist"]}
    assert set(users) == {"boss", "rep1"}
    assert users["rep1"]["direct_leader"] == ["boss"] and users["boss"]["is_leader_in_dept"] == [1]
    assert (await client.user_list(99)).errcode == 60123


async def test_media_get(client: WeComClient, fake: FakeWeCom, clock: SettableClock) -> None:
    fake.add_media("MEDIA1", b"\xff\xd8jpeg-bytes")
    assert (await client.media_get("MEDIA1")).data == b"\xff\xd8jpeg-bytes"
    fake.expire_tokens()
    assert (await client.media_get("MEDIA1")).data == b"\xff\xd8jpeg-bytes"  # 42001 -> one refresh
    assert fake.gettoken_calls == 2
    with pytest.raises(WeComApiError) as info:
        await client.media_get("NOPE")
    assert info.value.result.errcode == 40007
    clock.advance(days=3, seconds=1)  # media lives three days
    with pytest.raises(WeComApiError):
        await client.media_get("MEDIA1")


async def test_requests_are_counted_by_endpoint_and_outcome(
    http: aiohttp.ClientSession, fake: FakeWeCom, clock: SettableClock
) -> None:
    metrics = Metrics()
    client = make_client(http, fake, clock, metrics=metrics)
    await client.send_message(text("zhangsan", "x"))
    fake.script("message/send", [{"errcode": -1, "errmsg": "system busy"}])
    assert (await client.send_message(text("zhangsan", "y"))).errcode == -1
    assert metrics.value("salesbot_wecom_api_requests_total", endpoint="gettoken", outcome="0") == 1
    assert metrics.value("salesbot_wecom_api_requests_total", endpoint="message/send", outcome="0") == 1
    assert metrics.value("salesbot_wecom_api_requests_total", endpoint="message/send", outcome="-1") == 1
    rendered = await metrics.render()
    assert "# HELP salesbot_wecom_api_requests_total WeCom API calls" in rendered
