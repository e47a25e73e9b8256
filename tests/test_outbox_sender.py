"""OutboxSender against the fake WeCom API over real HTTP, on SQLite (and PostgreSQL when configured).

Time only moves when a test moves the settable clock; the fake reads the same clock, so its 30-a-minute
drop rule and duplicate-check interval are judged on the same time line as the sender's throttle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bot.channels.base import Reply, TemplateCard, Text, UpdateCard
from bot.channels.wecom.api import ApiResult, WeComClient, encode_body
from bot.clock import SettableClock
from bot.config import Settings
from bot.metrics import Metrics
from jobs.outbox import policy
from jobs.outbox.request import duplicate_check_spread, next_duplicate_check_interval
from jobs.outbox_sender import Claimed, OutboxSender, build_request, register_outbox_gauges
from store.db import Database
from store.models import OutboxMessage
from store.repos import outbox as outbox_repo
from tests.conftest import AGENT_ID, make_settings
from tests.fakes.wecom_api import FakeWeCom, Fault

BUSY = {"errcode": -1, "errmsg": "system busy"}


@dataclass
class Env:
    db: Database
    fake: FakeWeCom
    clock: SettableClock
    settings: Settings
    metrics: Metrics
    client: WeComClient
    sender: OutboxSender

    async def enqueue(self, recipient: str, reply: Reply, *, channel: str = "wecom") -> list[int]:
        async with self.db.transaction() as session:
            rows = outbox_repo.enqueue(
                session,
                channel=channel,
                recipient=recipient,
                reply=reply,
                now=self.clock.now(),
                text_max_bytes=self.settings.outbox.text_max_bytes,
            )
            await session.flush()
            return [row.id for row in rows]

    async def rows(self) -> list[OutboxMessage]:
        async with self.db.sessions() as session:
            return list((await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())

    async def row(self, row_id: int) -> OutboxMessage:
        async with self.db.sessions() as session:
            found = await session.get(OutboxMessage, row_id)
            assert found is not None
            return found

    async def pending(self) -> int:
        return sum(1 for r in await self.rows() if r.status == "pending")

    def delivered(self, userid: str) -> list[str | None]:
        return [m.content for m in self.fake.delivered(userid)]

    def intervals(self) -> list[int]:
        """duplicate_check_interval of every message/send request, in order."""
        return [r.json()["duplicate_check_interval"] for r in self.fake.requests("message/send")]

    def sends(self, kind: str, errcode: str) -> float:
        return self.metrics.value("salesbot_outbox_sends_total", channel="wecom", kind=kind, errcode=errcode)


Build = Callable[..., Env]


@pytest.fixture
def build(
    db: Database, db_url: str, fake: FakeWeCom, http: aiohttp.ClientSession, clock: SettableClock
) -> Build:
    """Env factory: `build(per_recipient_per_minute=..., wecom={...})` -> a sender with those settings."""

    def make(*, wecom: dict[str, Any] | None = None, database: Database | None = None, **outbox: Any) -> Env:
        settings = make_settings(db_url, api_base=fake.api_base, outbox=outbox, wecom=wecom or {})
        metrics = Metrics()
        client = WeComClient(http, settings.wecom, clock, metrics)
        sender = OutboxSender(database or db, client, settings, clock, metrics, rng=random.Random(7))
        return Env(database or db, fake, clock, settings, metrics, client, sender)

    return make


@pytest.fixture
def env(build: Build) -> Env:
    return build()


async def drive(env: Env, *, step: timedelta, limit: int = 200) -> None:
    """Run the sender, moving the clock by `step` between runs, until nothing is pending."""
    for _ in range(limit):
        await env.sender.run_once()
        if not await env.pending():
            return
        env.clock.advance(step)
    raise AssertionError("outbox not drained")


# ---------------------------------------------------------------- the happy path


async def test_sends_text_and_records_it(env: Env) -> None:
    [row_id] = await env.enqueue("zhangsan", Text("明天上午十点拜访客户"))
    assert await env.sender.run_once() == 1
    row = await env.row(row_id)
    assert row.status == "sent" and row.sent_at == env.clock.now() and row.attempts == 1
    assert row.lease_until is None
    [message] = env.fake.delivered("zhangsan")
    assert row.platform_msgid == message.msgid
    body = env.fake.requests("message/send")[0].json()
    assert body == {
        "touser": "zhangsan",
        "msgtype": "text",
        "agentid": AGENT_ID,
        "text": {"content": "明天上午十点拜访客户"},
        "enable_duplicate_check": 1,
        "duplicate_check_interval": env.settings.wecom.duplicate_check_interval_s,
    }
    assert env.sends("text", "0") == 1
    assert await env.sender.run_once() == 0


async def test_other_channels_are_left_alone(env: Env) -> None:
    [row_id] = await env.enqueue("staff01", Text("钉钉消息"), channel="dingtalk")
    assert await env.sender.run_once() == 0
    row = await env.row(row_id)
    assert row.status == "pending" and row.lease_until is None and row.attempts == 0
    assert not env.fake.requests("message/send")


async def test_long_chinese_text_is_split_and_delivered_in_order(env: Env) -> None:
    original = "".join(f"第{i}条：今日拜访华东区客户，需求已确认，报价待审批。\n" for i in range(65))
    assert 5000 <= len(original.encode()) < 5100
    ids = await env.enqueue("zhangsan", Text(original))
    rows = await env.rows()
    assert len(ids) == 3 and all(len(r.payload["content"].encode()) <= 2048 for r in rows)
    await env.sender.run_once()
    delivered = env.delivered("zhangsan")
    assert len(delivered) == 3
    assert "".join(c or "" for c in delivered) == original  # nothing truncated, nothing reordered


# ---------------------------------------------------------------- tokens


@pytest.mark.parametrize("failure", ["expire", "revoke"])
async def test_token_failure_mid_sending_refreshes_once_and_delivers_once(env: Env, failure: str) -> None:
    for i in range(3):
        await env.enqueue(f"u{i}", Text(f"first {i}"))
    await env.sender.run_once()
    if failure == "expire":
        env.fake.expire_tokens()  # 42001
    else:
        env.fake.revoke_tokens()  # 40014
    for i in range(3):
        await env.enqueue(f"u{i}", Text(f"second {i}"))
    await env.sender.run_once()
    assert env.fake.gettoken_calls == 2
    for i in range(3):
        assert env.delivered(f"u{i}") == [f"first {i}", f"second {i}"]
    assert all(r.status == "sent" for r in await env.rows())


async def test_bad_secret_pauses_without_spending_attempts(
    build: Build, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env = build(wecom={"secret": "not-the-secret-123"})
    [row_id] = await env.enqueue("zhangsan", Text("x"))
    await env.sender.run_once()
    row = await env.row(row_id)
    assert row.status == "pending" and row.attempts == 0 and row.last_errcode == 40001
    assert env.sender.paused_until == env.clock.now() + timedelta(seconds=60)
    assert not env.fake.requests("message/send")
    assert "not-the-secret-123" not in caplog.text


# ---------------------------------------------------------------- error policy


async def test_rate_limit_pauses_all_sending_then_delivers(build: Build) -> None:
    env = build(send_concurrency=1)
    start = env.clock.now()
    await env.enqueue("a", Text("a1"))
    await env.enqueue("a", Text("a2"))
    await env.enqueue("b", Text("b1"))
    env.fake.script("message/send", [{"errcode": 45009, "errmsg": "api freq out of limit"}])
    assert await env.sender.run_once() == 1
    assert env.sender.paused_until == start + timedelta(seconds=60)
    rows = await env.rows()
    assert all(r.status == "pending" and r.lease_until is None for r in rows)
    assert all(r.next_attempt_at == start + timedelta(seconds=60) for r in rows)
    assert rows[0].attempts == 0 and rows[0].last_errcode == 45009

    env.clock.advance(seconds=59)
    assert await env.sender.run_once() == 0
    assert len(env.fake.requests("message/send")) == 1  # nothing sent during the pause

    env.clock.advance(seconds=1)
    assert await env.sender.run_once() == 3
    assert env.delivered("a") == ["a1", "a2"] and env.delivered("b") == ["b1"]
    assert env.sends("text", "45009") == 1


async def test_busy_three_times_then_delivered_once_with_the_same_body(env: Env) -> None:
    [row_id] = await env.enqueue("zhangsan", Text("回款提醒"))
    env.fake.script("message/send", [BUSY, BUSY, BUSY])
    await drive(env, step=timedelta(seconds=env.settings.outbox.backoff_max_s))
    row = await env.row(row_id)
    assert row.status == "sent" and row.attempts == 4 and row.busy_retries == 3
    assert row.last_error is None and row.last_errcode == 0
    assert env.delivered("zhangsan") == ["回款提醒"]
    bodies = {r.body for r in env.fake.requests("message/send")}
    assert len(env.fake.requests("message/send")) == 4 and len(bodies) == 1  # byte-identical resends


async def test_busy_four_times_is_dead(env: Env) -> None:
    [row_id] = await env.enqueue("zhangsan", Text("回款提醒"))
    env.fake.script("message/send", [BUSY] * 4)
    await drive(env, step=timedelta(seconds=env.settings.outbox.backoff_max_s))
    row = await env.row(row_id)
    assert row.status == "dead" and row.last_errcode == -1 and row.attempts == 4
    assert row.busy_retries == 4 and row.last_error == "system busy"  # a count of its own, not in the text
    assert env.metrics.value("salesbot_outbox_dead_total", channel="wecom", errcode="-1") == 1
    assert env.delivered("zhangsan") == []


async def test_retry_waits_for_backoff_with_full_jitter(env: Env) -> None:
    [row_id] = await env.enqueue("zhangsan", Text("x"))
    env.fake.script("message/send", [BUSY])
    await env.sender.run_once()
    row = await env.row(row_id)
    delay = (row.next_attempt_at - env.clock.now()).total_seconds()
    assert 0 <= delay <= env.settings.outbox.backoff_base_s  # first retry: uniform in [0, base]
    assert row.status == "pending" and row.lease_until is None
    assert row.busy_retries == 1 and row.last_errcode == -1 and row.last_error == "system busy"


async def test_busy_answers_count_over_the_rows_life(build: Build) -> None:
    """-1 answers add up across other failures: the row's budget is busy_retries in all."""
    env = build(busy_retries=2)
    [row_id] = await env.enqueue("zhangsan", Text("x"))
    env.fake.script("message/send", [BUSY, Fault.DROP, BUSY, {"errcode": 45009, "errmsg": "freq"}, BUSY])
    await drive(env, step=timedelta(seconds=env.settings.outbox.backoff_max_s))
    row = await env.row(row_id)
    assert row.status == "dead" and row.busy_retries == 3 and row.attempts == 4  # the 45009 is not counted
    assert env.delivered("zhangsan") == []


async def test_network_errors_are_retried_and_delivered_once(env: Env) -> None:
    [row_id] = await env.enqueue("zhangsan", Text("合同已签"))
    env.fake.script("message/send", [Fault.DROP, Fault.HTTP_502, Fault.NOT_JSON])
    await drive(env, step=timedelta(seconds=env.settings.outbox.backoff_max_s))
    assert (await env.row(row_id)).attempts == 4
    assert env.delivered("zhangsan") == ["合同已签"]
    assert env.sends("text", "network") == 3


async def test_network_errors_up_to_max_attempts_then_dead(build: Build) -> None:
    env = build(max_attempts=3)
    [row_id] = await env.enqueue("zhangsan", Text("x"))
    env.fake.script("message/send", [Fault.DROP] * 3)
    await drive(env, step=timedelta(seconds=env.settings.outbox.backoff_max_s))
    row = await env.row(row_id)
    assert row.status == "dead" and row.attempts == 3 and row.last_error and "network" in row.last_error
    assert env.metrics.value("salesbot_outbox_dead_total", channel="wecom", errcode="network") == 1


async def test_lost_answer_resend_is_dropped_by_duplicate_check(env: Env) -> None:
    [row_id] = await env.enqueue("zhangsan", Text("审批已通过"))
    env.fake.script("message/send", [Fault.DELIVER_THEN_DROP])  # arrives, but the answer is lost
    await drive(env, step=timedelta(seconds=env.settings.outbox.backoff_max_s))
    assert (await env.row(row_id)).status == "sent"
    assert env.delivered("zhangsan") == ["审批已通过"]  # seen once
    assert len(env.fake.duplicates) == 1


# ---------------------------------------------------------------- identical replies vs the duplicate check


async def test_identical_replies_to_one_person_are_all_delivered(env: Env) -> None:
    base = env.settings.wecom.duplicate_check_interval_s
    ids = [await env.enqueue("zhangsan", Text("好的，已记录")) for _ in range(3)]
    await env.sender.run_once()
    env.clock.advance(seconds=600)  # well inside every window
    [later] = await env.enqueue("zhangsan", Text("好的，已记录"))
    await env.sender.run_once()
    assert env.delivered("zhangsan") == ["好的，已记录"] * 4
    assert env.fake.duplicates == []
    assert env.intervals() == [base, base - 1, base - 2, base - 3]  # the only difference between the JSONs
    rows = [await env.row(row_id) for [row_id] in ids] + [await env.row(later)]
    assert [r.duplicate_check_interval_s for r in rows] == env.intervals()


async def test_each_recipient_has_its_own_rotation(env: Env) -> None:
    base = env.settings.wecom.duplicate_check_interval_s
    await env.enqueue("zhangsan", Text("a"))
    await env.enqueue("lisi", Text("b"))
    await env.enqueue("zhangsan", Text("c"))
    await env.sender.run_once()
    by_user = {u: [m.body["duplicate_check_interval"] for m in env.fake.delivered(u)] for u in ("zhangsan", "lisi")}
    assert by_user == {"zhangsan": [base, base - 1], "lisi": [base]}


async def test_identical_replies_with_a_lost_answer_arrive_once_each(env: Env) -> None:
    """Two rows with the same words; the first one's answer is lost and it is sent again: the member
    gets exactly two messages, neither swallowed nor doubled."""
    for _ in range(2):
        await env.enqueue("zhangsan", Text("好的，已记录"))
    env.fake.script("message/send", [Fault.DELIVER_THEN_DROP])
    await drive(env, step=timedelta(seconds=env.settings.outbox.backoff_max_s))
    assert env.delivered("zhangsan") == ["好的，已记录", "好的，已记录"]
    assert len(env.fake.duplicates) == 1  # the resend of the first row
    sends = env.fake.requests("message/send")
    assert len(sends) == 3 and sends[0].body == sends[1].body != sends[2].body
    assert [r.status for r in await env.rows()] == ["sent", "sent"]


async def test_resend_after_a_config_change_keeps_the_rows_interval(
    env: Env, build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interval is stored at the first claim: a restart with another base still resends the same
    bytes, so the crashed row is not shown twice."""
    [row_id] = await env.enqueue("zhangsan", Text("客户已签约"))

    async def dies(*args: Any) -> None:
        raise RuntimeError("the process died between send and record")

    monkeypatch.setattr(env.sender, "_record", dies)
    await env.sender.run_once()
    restarted = build(wecom={"duplicate_check_interval_s": 7200})
    env.clock.advance(seconds=env.settings.outbox.lease_s + 1)
    assert await restarted.sender.run_once() == 1
    first, second = env.fake.requests("message/send")
    assert first.body == second.body
    assert env.delivered("zhangsan") == ["客户已签约"] and len(env.fake.duplicates) == 1
    assert (await env.row(row_id)).duplicate_check_interval_s == env.settings.wecom.duplicate_check_interval_s


@pytest.mark.parametrize(("base", "spread"), [(3600, 1800), (14400, 1800), (600, 300), (3, 1), (1, 1)])
def test_duplicate_check_interval_rotation(base: int, spread: int) -> None:
    assert duplicate_check_spread(base) == spread
    values, previous = [], None
    for _ in range(2 * spread):
        previous = next_duplicate_check_interval(previous, base)
        values.append(previous)
    assert values[:spread] == list(range(base, base - spread, -1)) == values[spread:]  # cycles
    assert min(values) >= max(1, base // 2)  # the window never shrinks below half the base
    assert next_duplicate_check_interval(base + 10, base) == base  # the base changed: start over
    assert next_duplicate_check_interval(base - spread, base) == base


async def test_unknown_errcode_is_a_dead_letter(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.fake.set_directory(
        [{"id": 1, "name": "公司", "parentid": 0, "order": 1}], [{"userid": "zhangsan", "department": [1]}]
    )
    [ghost] = await env.enqueue("ghost", Text("x"))
    [real] = await env.enqueue("zhangsan", Text("y"))
    await env.sender.run_once()
    row = await env.row(ghost)
    assert row.status == "dead" and row.last_errcode == 81013 and row.attempts == 1
    assert (await env.row(real)).status == "sent"
    assert env.metrics.value("salesbot_outbox_dead_total", channel="wecom", errcode="81013") == 1
    assert "81013" in caplog.text
    assert await env.sender.run_once() == 0  # never retried


async def test_invalid_row_is_dead_without_a_call(env: Env) -> None:
    async with env.db.transaction() as session:
        session.add(
            OutboxMessage(
                channel="wecom", recipient="zhangsan", kind="fax", payload={}, status="pending",
                attempts=0, next_attempt_at=env.clock.now(), created_at=env.clock.now(),
            )
        )  # fmt: skip
    await env.sender.run_once()
    [row] = await env.rows()
    assert row.status == "dead" and not env.fake.requests("message/send")
    assert env.metrics.value("salesbot_outbox_dead_total", channel="wecom", errcode="invalid") == 1


# ---------------------------------------------------------------- order and throttle


async def test_later_row_never_overtakes_a_retrying_one(build: Build) -> None:
    env = build(send_concurrency=1)
    await env.enqueue("a", Text("a1"))
    await env.enqueue("a", Text("a2"))
    await env.enqueue("b", Text("b1"))
    env.fake.script("message/send", [BUSY])  # a1's first attempt
    await env.sender.run_once()
    assert env.delivered("a") == [] and env.delivered("b") == ["b1"]
    a2 = (await env.rows())[1]
    assert a2.status == "pending" and a2.lease_until is None and a2.attempts == 0
    # a2 is due, but a1 is waiting for its retry: a2 must wait behind it.
    assert await env.sender.run_once() == 0
    await drive(env, step=timedelta(seconds=env.settings.outbox.backoff_max_s))
    assert env.delivered("a") == ["a1", "a2"]


async def test_31_messages_to_one_person_are_throttled_not_dropped(env: Env) -> None:
    start = env.clock.now()
    for i in range(31):
        await env.enqueue("zhangsan", Text(f"提醒{i}"))
    assert await env.sender.run_once() == 20
    deferred = [r for r in await env.rows() if r.status == "pending"]
    assert len(deferred) == 11 and all(r.next_attempt_at == start + timedelta(seconds=60) for r in deferred)

    for _ in range(24):  # two simulated minutes in 5 s steps
        env.clock.advance(seconds=5)
        await env.sender.run_once()
    assert env.delivered("zhangsan") == [f"提醒{i}" for i in range(31)]
    assert env.fake.dropped("zhangsan") == []
    times = [m.at for m in env.fake.delivered("zhangsan")]
    assert max(sum(1 for t in times if s <= t < s + timedelta(seconds=60)) for s in times) <= 20


async def test_hourly_throttle(build: Build) -> None:
    env = build(per_recipient_per_minute=20, per_recipient_per_hour=25)
    start = env.clock.now()
    for i in range(30):
        await env.enqueue("zhangsan", Text(f"m{i}"))
    await env.sender.run_once()
    env.clock.advance(seconds=60)
    await env.sender.run_once()
    assert len(env.delivered("zhangsan")) == 25
    waiting = [r for r in await env.rows() if r.status == "pending"]
    assert all(r.next_attempt_at == start + timedelta(hours=1) for r in waiting)
    env.clock.set(start + timedelta(hours=1))
    await env.sender.run_once()
    assert env.delivered("zhangsan") == [f"m{i}" for i in range(30)]


async def test_throttle_counts_survive_a_restart(env: Env, build: Build) -> None:
    start = env.clock.now()
    for i in range(20):
        await env.enqueue("zhangsan", Text(f"m{i}"))
    assert await env.sender.run_once() == 20
    env.clock.advance(seconds=30)
    restarted = build()  # a new process: no memory of the 20, only their sent_at in the database
    for i in range(20, 25):
        await env.enqueue("zhangsan", Text(f"m{i}"))
    assert await restarted.sender.run_once() == 0
    assert all(
        r.next_attempt_at == start + timedelta(seconds=60) for r in await env.rows() if r.status == "pending"
    )
    env.clock.advance(seconds=30)
    assert await restarted.sender.run_once() == 5
    assert env.delivered("zhangsan") == [f"m{i}" for i in range(25)]


# ---------------------------------------------------------------- crash safety


async def test_crash_after_send_before_record_is_resent_and_deduplicated(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    [row_id] = await env.enqueue("zhangsan", Text("客户已签约"))
    record = env.sender._record
    calls = 0

    async def dies_once(*args: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the process died between send and record")
        await record(*args)

    monkeypatch.setattr(env.sender, "_record", dies_once)
    await env.sender.run_once()
    row = await env.row(row_id)
    assert row.status == "pending" and row.lease_until is not None
    assert await env.sender.run_once() == 0  # leased: nobody resends before the lease ends

    env.clock.advance(seconds=env.settings.outbox.lease_s + 1)
    assert await env.sender.run_once() == 1
    assert (await env.row(row_id)).status == "sent"
    first, second = env.fake.requests("message/send")
    assert first.body == second.body  # the same request ...
    assert env.delivered("zhangsan") == ["客户已签约"]  # ... so WeCom shows it once
    assert len(env.fake.duplicates) == 1


async def test_two_senders_on_one_database_never_send_a_row_twice(build: Build, db_url: str) -> None:
    other_db = Database.open(db_url)
    try:
        one = build(batch_size=7)
        two = build(batch_size=7, database=other_db)
        for n in range(6):
            for u in range(10):
                await one.enqueue(f"u{u}", Text(f"u{u}-{n}"))
        for _ in range(30):
            await asyncio.gather(one.sender.run_once(), two.sender.run_once())
            if not await one.pending():
                break
        assert not await one.pending()
        assert len(one.fake.requests("message/send")) == 60  # every row sent exactly once
        assert one.fake.duplicates == []
        for u in range(10):
            assert one.delivered(f"u{u}") == [f"u{u}-{n}" for n in range(6)]
    finally:
        await other_db.close()


# ---------------------------------------------------------------- template cards


def _card(task_id: str) -> dict[str, Any]:
    return {
        "card_type": "button_interaction",
        "main_title": {"title": "商机停滞 14 天"},
        "task_id": task_id,
        "button_list": [{"text": "已跟进", "key": "done"}],
    }


async def test_template_card_and_update_card(env: Env) -> None:
    [card_id] = await env.enqueue("zhangsan", TemplateCard(_card("esc-1")))
    await env.sender.run_once()
    [card] = env.fake.delivered("zhangsan")
    assert card.msgtype == "template_card" and card.body["template_card"]["task_id"] == "esc-1"
    assert card.response_code and (await env.row(card_id)).response_code == card.response_code

    code = env.fake.issue_response_code(["zhangsan"])  # as the click callback carries it
    [update_id] = await env.enqueue("zhangsan", UpdateCard(code, ("zhangsan",), replace_name="已跟进"))
    [again_id] = await env.enqueue("zhangsan", UpdateCard(code, ("zhangsan",), replace_name="再次"))
    await env.sender.run_once()
    assert env.fake.card_updates == [
        {
            "userids": ["zhangsan"],
            "agentid": AGENT_ID,
            "response_code": code,
            "button": {"replace_name": "已跟进"},
        }
    ]
    assert (await env.row(update_id)).status == "sent"
    again = await env.row(again_id)
    assert again.status == "dead" and again.last_errcode == 40035  # response_code is single-use
    assert env.sends("update_card", "0") == 1


async def test_response_code_is_kept_for_updating_an_unclicked_card(env: Env) -> None:
    """The code message/send gave for an interactive card, stored on its row, updates the card later
    (e.g. "expired") although nobody clicked; cards without buttons and texts have none."""
    [card_id] = await env.enqueue("zhangsan", TemplateCard(_card("esc-3")))
    notice = {"card_type": "text_notice", "main_title": {"title": "周报"}, "card_action": {"type": 1, "url": "https://x"}}
    [notice_id] = await env.enqueue("zhangsan", TemplateCard(notice))
    [text_id] = await env.enqueue("zhangsan", Text("x"))
    await env.sender.run_once()
    code = (await env.row(card_id)).response_code
    assert code is not None
    assert (await env.row(notice_id)).response_code is None and (await env.row(text_id)).response_code is None

    [update_id] = await env.enqueue("zhangsan", UpdateCard(code, ("zhangsan",), replace_name="已过期"))
    await env.sender.run_once()
    assert (await env.row(update_id)).status == "sent"
    assert env.fake.card_updates[0]["response_code"] == code


async def test_update_card_can_replace_the_whole_card(env: Env) -> None:
    code = env.fake.issue_response_code(["zhangsan"])
    new_card = {**_card("esc-2"), "main_title": {"title": "已处理"}}
    await env.enqueue("zhangsan", UpdateCard(code, ("zhangsan",), card=new_card))
    await env.sender.run_once()
    [update] = env.fake.card_updates
    assert update["template_card"] == new_card and "button" not in update


# ---------------------------------------------------------------- loop and gauges


async def test_run_forever_wakes_on_event_and_survives_a_failed_run(
    build: Build, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env = build(poll_interval_s=0.05)
    claim = env.sender._claim
    failed = asyncio.Event()

    async def fails_once(now: datetime) -> Any:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("database went away")
        return await claim(now)

    monkeypatch.setattr(env.sender, "_claim", fails_once)
    wakeup = asyncio.Event()
    task = asyncio.create_task(env.sender.run_forever(wakeup))
    try:
        await asyncio.wait_for(failed.wait(), timeout=5)
        await env.enqueue("zhangsan", Text("还在运行"))
        wakeup.set()
        await env.fake.wait_delivered(1, userid="zhangsan", timeout=5)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "run failed" in caplog.text
    assert env.delivered("zhangsan") == ["还在运行"]


async def test_backlog_gauges(env: Env) -> None:
    register_outbox_gauges(env.metrics, env.db, env.clock)
    await env.enqueue("zhangsan", Text("a"))
    await env.enqueue("lisi", Text("b"), channel="dingtalk")
    env.clock.advance(seconds=30)
    text = await env.metrics.render()
    assert "salesbot_outbox_backlog 2" in text and "salesbot_outbox_oldest_age_seconds 30" in text
    await env.sender.run_once()
    text = await env.metrics.render()
    assert "salesbot_outbox_backlog 1" in text


# ---------------------------------------------------------------- pure parts


def test_build_request_is_deterministic_and_canonical() -> None:
    settings = make_settings("sqlite+aiosqlite:///unused.db")
    payload = {"content": "你好"}
    _, body = build_request("text", "zhangsan", payload, settings.wecom)
    _, same = build_request("text", "zhangsan", dict(reversed(list(payload.items()))), settings.wecom)
    assert encode_body(body) == encode_body(same)
    assert encode_body({"b": 1, "a": "中"}) == '{"a":"中","b":1}'.encode()
    assert body["duplicate_check_interval"] == settings.wecom.duplicate_check_interval_s  # none stored yet
    _, stored = build_request("text", "zhangsan", payload, settings.wecom, duplicate_check_interval=3500)
    assert stored["duplicate_check_interval"] == 3500


def _claimed(**fields: Any) -> Claimed:
    values: dict[str, Any] = {
        "id": 1, "recipient": "zhangsan", "kind": "text", "payload": {"content": "x"}, "attempts": 0,
        "busy_retries": 0, "duplicate_check_interval_s": 3600, "lease_until": datetime(2026, 1, 1),
    }  # fmt: skip
    return Claimed(**{**values, **fields})


def test_policy_decides_from_the_answer_alone() -> None:
    outbox = make_settings("sqlite+aiosqlite:///unused.db").outbox
    now, rng = datetime(2026, 1, 1), random.Random(1)
    busy = ApiResult(-1, "system busy")
    first = policy.on_answer(_claimed(), busy, outbox, now, rng)
    assert first.action == "retry" and first.busy_retries == 1 and first.error == "system busy"
    last = policy.on_answer(_claimed(busy_retries=outbox.busy_retries), busy, outbox, now, rng)
    assert last.action == "dead" and last.busy_retries == outbox.busy_retries + 1
    limited = policy.on_answer(_claimed(), ApiResult(45033, "freq"), outbox, now, rng)
    assert limited.action == "pause" and not limited.counts_attempt and limited.busy_retries is None
    assert limited.until == now + timedelta(seconds=outbox.rate_limit_pause_s)
    sent = policy.on_answer(_claimed(), ApiResult(0, "ok", {"msgid": "m1", "response_code": "rc"}), outbox, now, rng)
    assert (sent.action, sent.msgid, sent.response_code) == ("sent", "m1", "rc")
    oversized = ApiResult(0, "ok", {"msgid": "m" * 129, "response_code": ""})
    assert policy.on_answer(_claimed(), oversized, outbox, now, rng).msgid is None  # never fails the record
    assert policy.on_answer(_claimed(), ApiResult(81013, "no user"), outbox, now, rng).action == "dead"


@pytest.mark.parametrize(
    ("text", "max_bytes", "parts"),
    [
        ("a" * 2046 + "😀", 2048, ["a" * 2046, "😀"]),  # a 4-byte character never straddles a cut
        ("a" * 2044 + "😀", 2048, ["a" * 2044 + "😀"]),  # exactly 2048 bytes: one part
        ("销" * 683, 2048, ["销" * 682, "销"]),  # 3-byte characters: 2046 bytes, not 2049
        ("", 2048, [""]),
        ("abcde\nfghijk", 8, ["abcde\n", "fghijk"]),  # a line break in the second half of a part wins
        ("a\nbcdefghij", 8, ["a\nbcdefg", "hij"]),  # one in the first half would waste the part
    ],
)
def test_split_utf8_edges(text: str, max_bytes: int, parts: list[str]) -> None:
    assert outbox_repo.split_utf8(text, max_bytes) == parts


def test_split_utf8_rejects_a_budget_below_one_character() -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        outbox_repo.split_utf8("x", 3)


@given(st.text(), st.integers(min_value=4, max_value=64))
def test_split_utf8_parts_fit_and_reassemble(text: str, max_bytes: int) -> None:
    parts = outbox_repo.split_utf8(text, max_bytes)
    assert "".join(parts) == text
    assert all(len(p.encode("utf-8")) <= max_bytes for p in parts)
    assert all(parts) or parts == [""]
