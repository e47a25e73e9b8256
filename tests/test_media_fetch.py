"""R6 attachments: the media fetcher downloads what reps send, outside any transaction, through the real
app (tests/harness.py) and the fake WeCom's media/get, on SQLite (and PostgreSQL when configured).

Attachment rows are inserted directly, as the handler will write them. Time only moves when a test
moves the settable clock; the fake reads the same clock, so WeCom's 3-day validity and the fetcher's
backoff and expiry are judged on one time line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.channels.wecom.api import MediaTooLargeError, WeComApiError, WeComClient
from bot.clock import SettableClock
from bot.metrics import Metrics
from jobs.media_fetch import BATCH_SIZE, MediaFetcher, display_name, extension, relative_path
from jobs.registry import registry
from store.db import Database
from store.models import Attachment, Customer, KeyAction, Opportunity
from tests.conftest import SECRET, make_settings
from tests.fakes.wecom_api import FakeWeCom, Fault, running_fake_wecom
from tests.harness import Bot, running_bot, seed_team
from tests.test_cli import run as run_cli
from tests.test_cli import write_config

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8 + b"\xff\xd9"  # 2054 bytes
BUSY = {"errcode": -1, "errmsg": "system busy"}


@dataclass
class Env:
    bot: Bot
    db: Database
    clock: SettableClock
    media_dir: Path
    users: dict[str, int]

    @property
    def fake(self) -> FakeWeCom:
        return self.bot.fake

    @property
    def fetcher(self) -> MediaFetcher:
        assert self.bot.deps.media is not None
        return self.bot.deps.media

    async def attach(
        self, media_id: str, *, at: datetime | None = None, key_action_id: int | None = None, msg_type: str = "image"
    ) -> int:
        """An attachment row as the handler writes it: pending, due at once, valid max_age_days."""
        received = at or self.clock.now()
        max_age = timedelta(days=self.bot.deps.settings.media.max_age_days)
        async with self.db.transaction() as s:
            row = Attachment(
                channel="wecom", media_id=media_id, msg_type=msg_type, user_id=self.users["zhangsan"],
                status="pending", received_at=received, expires_at=received + max_age, next_attempt_at=received,
                key_action_id=key_action_id, created_at=received,
            )  # fmt: skip
            s.add(row)
            await s.flush()
            return row.id

    async def key_action(self, name: str = "需求调研报告") -> int:
        now = self.clock.now()
        async with self.db.transaction() as s:
            customer = Customer(name="华远科技", owner_id=self.users["zhangsan"], created_at=now)
            s.add(customer)
            await s.flush()
            opp = Opportunity(
                name="华远 CRM", customer_id=customer.id, owner_id=self.users["zhangsan"], stage="需求诊断",
                stage_entered_at=now, last_progress_at=now, created_at=now,
            )  # fmt: skip
            s.add(opp)
            await s.flush()
            action = KeyAction(opportunity_id=opp.id, name=name, stage="方案呈现", created_at=now)
            s.add(action)
            await s.flush()
            return action.id

    async def row(self, attachment_id: int) -> Attachment:
        async with self.db.sessions() as s:
            found = await s.get(Attachment, attachment_id)
            assert found is not None
            return found

    async def action(self, key_action_id: int) -> KeyAction:
        async with self.db.sessions() as s:
            found = await s.get(KeyAction, key_action_id)
            assert found is not None
            return found

    def files(self) -> list[str]:
        """Every file under the media directory (temporary ones included), relative, sorted."""
        if not self.media_dir.exists():
            return []
        return sorted(str(p.relative_to(self.media_dir)) for p in self.media_dir.rglob("*") if p.is_file())

    def downloads(self) -> int:
        return len(self.fake.requests("media/get"))

    def outcomes(self, outcome: str) -> float:
        return self.bot.deps.metrics.value("salesbot_media_fetch_total", outcome=outcome)


Start = Callable[..., AbstractAsyncContextManager[Env]]


@pytest.fixture
def start(db_url: str, db: Database, clock: SettableClock, tmp_path: Path) -> Start:
    """`async with start(max_bytes=...) as env`: the app (no background loops: `bot.settle()` runs the
    fetcher) against a fake WeCom, with a team seeded and [media] dir under tmp_path."""

    @asynccontextmanager
    async def make(*, run_sender: bool = False, **media: Any) -> AsyncIterator[Env]:
        media_dir = tmp_path / "media"
        async with running_fake_wecom(clock) as fake:
            settings = make_settings(db_url, api_base=fake.api_base, media={"dir": str(media_dir), **media})
            async with running_bot(db_url, clock, fake=fake, settings=settings, run_sender=run_sender) as bot:
                users = await seed_team(db, clock)
                yield Env(bot, db, clock, media_dir, users)

    return make


# ---------------------------------------------------------------- stored


async def test_stores_the_file_under_the_media_dir_and_completes_the_key_action(start: Start, tmp_path: Path) -> None:
    """R6: the downloaded bytes, their sha256, a path built from the id, the month and the content type
    only — the sender's "../../etc/passwd" is a display name, never a path — and the key action."""
    async with start() as env:
        env.fake.add_media("M-1", JPEG, "image/jpeg", filename="../../etc/passwd")
        action_id = await env.key_action()
        received = env.clock.now()
        att_id = await env.attach("M-1", key_action_id=action_id)
        env.clock.advance(seconds=5)
        await env.bot.settle()

        row = await env.row(att_id)
        digest = hashlib.sha256(JPEG).hexdigest()
        assert row.status == "stored" and row.last_error is None and row.attempts == 1
        assert row.sha256 == digest and row.size_bytes == len(JPEG)
        assert row.content_type == "image/jpeg" and row.file_name == "passwd"
        assert row.path == f"2026/11/{att_id}-{digest[:16]}.jpg"
        assert row.stored_at == env.clock.now()
        stored = env.media_dir / row.path
        assert stored.read_bytes() == JPEG
        assert stored.resolve().is_relative_to(env.media_dir.resolve())
        assert env.files() == [row.path]  # no temporary file left, nothing elsewhere
        assert not (tmp_path / "etc").exists() and not (tmp_path.parent / "etc" / "passwd").exists()

        action = await env.action(action_id)
        assert action.attachment_path == row.path and action.attachment_media_id == "M-1"
        assert action.attached_at == received
        assert env.downloads() == 1 and env.outcomes("stored") == 1

        await env.bot.settle()  # nothing is due any more
        assert env.downloads() == 1


async def test_extension_comes_from_the_content_type_and_a_chinese_name_is_kept_for_display(start: Start) -> None:
    async with start() as env:
        env.fake.add_media("PDF", b"%PDF-1.7 contract", "application/pdf", filename="合同签字页.exe")
        env.fake.add_media("ODD", b"#!/bin/sh\nrm -rf /\n", "application/x-sh", filename="evil.sh")
        pdf_id, odd_id = await env.attach("PDF", msg_type="file"), await env.attach("ODD", msg_type="file")
        await env.bot.settle()
        pdf, odd = await env.row(pdf_id), await env.row(odd_id)
        assert pdf.path is not None and pdf.path.endswith(".pdf") and pdf.file_name == "合同签字页.exe"
        assert odd.path is not None and odd.path.endswith(".bin") and odd.file_name == "evil.sh"
        assert odd.content_type == "application/x-sh"


async def test_key_action_keeps_the_later_attachment(start: Start) -> None:
    async with start() as env:
        action_id = await env.key_action()
        env.fake.add_media("OLD", JPEG + b"old", "image/jpeg")
        env.fake.add_media("NEW", JPEG + b"new", "image/jpeg")
        first = env.clock.now()
        old_id = await env.attach("OLD", at=first)
        new_id = await env.attach("NEW", at=first + timedelta(minutes=5), key_action_id=action_id)
        env.clock.advance(minutes=10)
        async with env.db.transaction() as s:  # the earlier one is only linked after the later one
            old = await s.get(Attachment, old_id)
            assert old is not None
            old.key_action_id = action_id
        await env.bot.settle()
        new = await env.row(new_id)
        action = await env.action(action_id)
        assert (await env.row(old_id)).status == "stored" and new.status == "stored"
        assert action.attachment_media_id == "NEW" and action.attachment_path == new.path
        assert action.attached_at == first + timedelta(minutes=5)


async def test_key_action_linked_before_the_download_gets_the_path(start: Start) -> None:
    """As handlers/keyactions.py links: the rep picks the key action first (attachment_media_id set,
    attached_at = when picked, no path yet); the download fills the path and keeps attached_at."""
    async with start() as env:
        action_id = await env.key_action()
        env.fake.add_media("M", JPEG)
        att_id = await env.attach("M")
        picked = env.clock.advance(minutes=2)
        async with env.db.transaction() as s:
            action, row = await s.get(KeyAction, action_id), await s.get(Attachment, att_id)
            assert action is not None and row is not None
            row.key_action_id, row.file_name = action_id, "需求调研报告.jpg"  # the name from the message
            action.attachment_media_id, action.attached_at = "M", picked
        await env.bot.settle()
        row = await env.row(att_id)
        action = await env.action(action_id)
        assert row.status == "stored" and action.attachment_path == row.path
        assert action.attached_at == picked and action.attachment_media_id == "M"
        assert row.file_name == "需求调研报告.jpg"  # not WeCom's "M.jpg"


async def test_key_action_picked_while_downloading_gets_the_path(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    async with start() as env:
        action_id = await env.key_action()
        env.fake.add_media("M", JPEG)
        att_id = await env.attach("M")
        assert env.bot.deps.wecom is not None
        media_get = env.bot.deps.wecom.media_get

        async def rep_picks_meanwhile(*args: Any, **kwargs: Any) -> Any:
            media = await media_get(*args, **kwargs)
            async with env.db.transaction() as s:
                row = await s.get(Attachment, att_id)
                assert row is not None
                row.key_action_id = action_id
            return media

        monkeypatch.setattr(env.bot.deps.wecom, "media_get", rep_picks_meanwhile)
        await env.bot.settle()
        row = await env.row(att_id)
        action = await env.action(action_id)
        assert row.status == "stored" and action.attachment_path == row.path
        assert action.attachment_media_id == "M" and action.attached_at == row.received_at


# ---------------------------------------------------------------- expired


async def test_invalid_media_id_40007_is_expired(start: Start) -> None:
    async with start() as env:
        att_id = await env.attach("NEVER-UPLOADED")
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "expired" and row.attempts == 1 and row.path is None
        assert row.last_error is not None and "40007" in row.last_error
        assert env.files() == [] and env.outcomes("expired") == 1
        await env.bot.settle()
        assert env.downloads() == 1  # not asked again


async def test_past_expires_at_is_expired_without_a_request(start: Start) -> None:
    async with start() as env:
        env.fake.add_media("LATE", JPEG)
        att_id = await env.attach("LATE", at=env.clock.now() - timedelta(days=3, seconds=1))
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "expired" and row.attempts == 0
        assert row.last_error is not None and "expired" in row.last_error
        assert env.downloads() == 0 and env.outcomes("expired") == 1


# ---------------------------------------------------------------- retries


async def test_network_errors_and_busy_are_retried_with_backoff_then_stored(start: Start) -> None:
    async with start(retry_base_s=60) as env:
        env.fake.add_media("M", JPEG)
        # (A dropped connection is not scripted: aiohttp resends an idempotent GET once by itself when
        # a reused keep-alive connection turns out closed.)
        env.fake.script("media/get", [Fault.HTTP_502, BUSY, Fault.TRUNCATE])
        att_id = await env.attach("M")
        t0 = env.clock.now()
        expected = [(1, 60, "HTTP 502"), (2, 120, "errcode -1"), (3, 240, "ClientPayloadError")]
        for attempts, delay, error in expected:
            await env.bot.settle()
            row = await env.row(att_id)
            assert (row.status, row.attempts) == ("failed", attempts)
            assert row.last_error is not None and error in row.last_error
            assert row.next_attempt_at == env.clock.now() + timedelta(seconds=delay)
            env.clock.advance(seconds=delay - 1)
            await env.bot.settle()
            assert env.downloads() == attempts  # not before the backoff
            env.clock.advance(seconds=1)
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "stored" and row.attempts == 4 and row.last_error is None
        assert env.clock.now() - t0 == timedelta(seconds=60 + 120 + 240)
        assert (env.media_dir / str(row.path)).read_bytes() == JPEG
        assert env.outcomes("failed") == 3 and env.outcomes("stored") == 1


async def test_retries_stop_at_expiry(start: Start) -> None:
    """The backoff never schedules a retry past expires_at; at expires_at the row is given up."""
    async with start(retry_base_s=60) as env:
        env.fake.add_media("M", JPEG)
        env.fake.script("media/get", [BUSY, BUSY])
        expires = env.clock.now() + timedelta(seconds=100)
        att_id = await env.attach("M", at=expires - timedelta(days=3))
        await env.bot.settle()
        assert (await env.row(att_id)).next_attempt_at == env.clock.now() + timedelta(seconds=60)
        env.clock.advance(seconds=60)
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "failed" and row.next_attempt_at == expires  # not now + 120 s
        env.clock.set(expires)
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "expired" and row.attempts == 2 and env.downloads() == 2
        assert row.last_error is not None and "last error: media/get: errcode -1" in row.last_error


async def test_a_truncated_body_leaves_no_file_and_is_retried(start: Start) -> None:
    async with start() as env:
        env.fake.add_media("M", JPEG)
        env.fake.script("media/get", [Fault.TRUNCATE])
        att_id = await env.attach("M")
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "failed" and row.last_error is not None and "ClientPayloadError" in row.last_error
        assert env.files() == []
        env.clock.advance(seconds=60)
        await env.bot.settle()
        assert (await env.row(att_id)).status == "stored"


async def test_a_failed_write_leaves_no_partial_file(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    async with start() as env:
        env.fake.add_media("M", JPEG)
        att_id = await env.attach("M")

        def disk_full(_src: Any, _dst: Any) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", disk_full)
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "failed" and row.last_error is not None and "No space left" in row.last_error
        assert env.files() == []
        monkeypatch.undo()
        env.clock.advance(seconds=60)
        await env.bot.settle()
        assert (await env.row(att_id)).status == "stored"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_max_bytes_is_refused_and_never_kept(start: Start, chunked: bool) -> None:
    async with start(max_bytes=1024) as env:
        env.fake.add_media("BIG", JPEG, chunked=chunked)  # 2054 bytes
        att_id = await env.attach("BIG")
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "failed" and row.path is None and row.size_bytes is None
        assert row.last_error is not None and "too large" in row.last_error and "1024 bytes" in row.last_error
        assert ("Content-Length 2054" in row.last_error) is not chunked
        assert env.files() == []
        counted = env.bot.deps.metrics.value(
            "salesbot_wecom_api_requests_total", endpoint="media/get", outcome="too_large"
        )
        assert counted == 1
        env.clock.set(row.expires_at)  # every retry refused alike; given up at expiry
        await env.bot.settle()
        row = await env.row(att_id)
        assert row.status == "expired" and "too large" in str(row.last_error)
        assert env.files() == []


# ---------------------------------------------------------------- concurrency, jobs, the loop


async def test_two_fetchers_download_each_row_once(start: Start, db_url: str) -> None:
    async with start() as env:
        ids = []
        for n in range(BATCH_SIZE + 3):
            env.fake.add_media(f"M{n}", JPEG + str(n).encode())
            ids.append(await env.attach(f"M{n}"))
        other_db = Database.open(db_url)
        try:
            deps = env.bot.deps
            assert deps.wecom is not None
            other = MediaFetcher(other_db, deps.wecom, deps.settings, env.clock, Metrics())
            now = env.clock.now()
            for _ in range(5):
                counts = await asyncio.gather(env.fetcher.run_once(now), other.run_once(now))
                if not any(counts):
                    break
        finally:
            await other_db.close()
        assert env.downloads() == len(ids)  # each row downloaded exactly once
        assert {(await env.row(i)).status for i in ids} == {"stored"}
        assert len(env.files()) == len(ids)


async def test_jobs_run_media_fetch_through_the_registry(start: Start) -> None:
    async with start() as env:
        env.fake.add_media("M", JPEG)
        att_id = await env.attach("M")
        assert await registry()["media-fetch"](env.bot.deps, env.clock.now()) == 1
        assert (await env.row(att_id)).status == "stored"
        assert await registry()["media-fetch"](env.bot.deps, env.clock.now()) == 0


async def test_salesbot_jobs_run_media_fetch_at_a_given_moment(
    db_url: str, db: Database, clock: SettableClock, tmp_path: Path
) -> None:
    """`salesbot jobs run media-fetch --now ISO` in a subprocess: the row is past its expiry at the
    given moment, so it is given up without a request."""
    users = await seed_team(db, clock)
    async with running_fake_wecom(clock) as fake:
        fake.add_media("M", JPEG)
        received = clock.now()
        async with db.transaction() as s:
            s.add(Attachment(
                channel="wecom", media_id="M", msg_type="image", user_id=users["zhangsan"], received_at=received,
                expires_at=received + timedelta(days=3), next_attempt_at=received, created_at=received,
            ))  # fmt: skip
        cfg = write_config(tmp_path / "c.toml", db_url, fake.api_base)
        cfg.write_text(cfg.read_text() + f'[media]\ndir = "{tmp_path / "media"}"\n', encoding="utf-8")
        code, out, err = await run_cli(
            "--config", str(cfg), "jobs", "run", "media-fetch", "--now", "2026-12-03T10:00:01",
            env={"SALESBOT_WECOM_SECRET": SECRET},
        )  # fmt: skip
        assert code == 0, err
        assert out.strip() == "media-fetch: 1"
        assert fake.requests("media/get") == []
    async with db.sessions() as s:
        row = (await s.scalars(select(Attachment))).one()
    assert row.status == "expired"


@pytest.mark.parametrize("run_sender", [True, False])
async def test_the_app_runs_the_fetcher_loop_with_the_sender(start: Start, run_sender: bool) -> None:
    async with start(run_sender=run_sender):
        names = {t.get_name() for t in asyncio.all_tasks()}
        assert ("media-fetcher" in names) is run_sender and ("outbox-sender" in names) is run_sender


async def test_run_forever_wakes_on_event_and_survives_a_failed_run(
    start: Start, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with start() as env:
        deps = env.bot.deps
        assert deps.wecom is not None
        fetcher = MediaFetcher(env.db, deps.wecom, deps.settings, env.clock, Metrics())
        claim, stored = fetcher._claim, fetcher._stored
        failed, done = asyncio.Event(), asyncio.Event()

        async def fails_once(now: datetime) -> Any:
            if not failed.is_set():
                failed.set()
                raise RuntimeError("database went away")
            return await claim(now)

        async def recorded(*args: Any) -> None:
            await stored(*args)
            done.set()

        monkeypatch.setattr(fetcher, "_claim", fails_once)
        monkeypatch.setattr(fetcher, "_stored", recorded)
        wakeup = asyncio.Event()
        task = asyncio.create_task(fetcher.run_forever(wakeup))
        try:
            await asyncio.wait_for(failed.wait(), timeout=5)
            env.fake.add_media("M", JPEG)
            att_id = await env.attach("M")
            wakeup.set()  # what Deps.wake_media does; the interval is 30 s
            await asyncio.wait_for(done.wait(), timeout=5)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert "run failed" in caplog.text
        assert (await env.row(att_id)).status == "stored"


# ---------------------------------------------------------------- the client and the fake, as the docs say


async def test_media_get_answers_like_the_docs(
    fake: FakeWeCom, http: aiohttp.ClientSession, clock: SettableClock
) -> None:
    """获取临时素材: 200 with Content-Type and `Content-disposition: attachment; filename="MEDIA_ID.jpg"`;
    errors as JSON (40007); media_id valid three days."""
    settings = make_settings("sqlite+aiosqlite:///unused.db", api_base=fake.api_base)
    client = WeComClient(http, settings.wecom, clock, Metrics())
    fake.add_media("MEDIA_ID", JPEG)
    media = await client.media_get("MEDIA_ID")
    assert (media.data, media.content_type, media.file_name) == (JPEG, "image/jpeg", "MEDIA_ID.jpg")
    async with http.get(f"{fake.api_base}/cgi-bin/media/get", params=fake.requests("media/get")[0].query) as resp:
        assert resp.headers["Content-Disposition"] == 'attachment; filename="MEDIA_ID.jpg"'
        assert resp.headers["Content-Length"] == str(len(JPEG))
    with pytest.raises(MediaTooLargeError) as info:
        await client.media_get("MEDIA_ID", max_bytes=100)
    assert info.value.declared and info.value.size == len(JPEG)
    clock.advance(days=3, seconds=1)
    with pytest.raises(WeComApiError) as error:
        await client.media_get("MEDIA_ID")
    assert (error.value.result.errcode, error.value.result.errmsg) == (40007, "invalid media_id")


@pytest.mark.parametrize(
    ("size", "content_type", "media_type", "ok"),
    [
        (5, "image/jpeg", None, False),  # "所有文件size必须大于5个字节"
        (6, "image/jpeg", None, True),
        (10 * 1024 * 1024, "image/png", None, True),
        (10 * 1024 * 1024 + 1, "image/png", None, False),
        (2 * 1024 * 1024 + 1, "voice/amr", None, False),
        (10 * 1024 * 1024 + 1, "video/mp4", None, False),
        (20 * 1024 * 1024, "application/pdf", None, True),
        (20 * 1024 * 1024 + 1, "application/pdf", "file", False),
    ],
)
def test_fake_keeps_only_what_wecom_accepts(
    clock: SettableClock, size: int, content_type: str, media_type: str | None, ok: bool
) -> None:
    fake = FakeWeCom(clock, corp_id="c", secret="s", agent_id=1)
    add = lambda: fake.add_media("X", b"x" * size, content_type, media_type=media_type)  # noqa: E731
    if ok:
        add()
    else:
        with pytest.raises(ValueError, match="WeCom keeps no"):
            add()


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("报价单\u202egpj.exe", "报价单gpj.exe"),  # a right-to-left override would disguise the type
        ("a\x00b\nc.txt", "abc.txt"),
        ("..", None),
        ("/", None),
        ("", None),
        (None, None),
        ("长" * 300 + ".pdf", "长" * 255),
    ],
)
def test_display_name(raw: str | None, shown: str | None) -> None:
    assert display_name(raw) == shown


def test_extension_and_path_use_no_sender_input() -> None:
    assert extension("image/jpeg") == ".jpg" and extension("Image/PNG; q=1") == ".png"
    assert extension("application/pdf") == ".pdf" and extension("") == ".bin" and extension("x/../../y") == ".bin"
    received = datetime.fromisoformat("2026-11-30T17:30:00+00:00")  # 1 December in Asia/Shanghai
    assert str(relative_path(42, received, "ab" * 32, "image/png")) == "2026/12/42-abababababababab.png"
