"""The real wire in tests: the full aiohttp app on 127.0.0.1, a fake WeCom API, a settable clock."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.clock import SettableClock
from bot.config import Settings
from bot.deps import DEPS, Deps
from bot.nlu.lexicon import Lexicon
from store.db import Database
from store.models import InboxMessage, OrgUnit, OutboxMessage, User
from tests.conftest import AES_KEY, AGENT_ID, CORP_ID, TOKEN, make_settings
from tests.fakes.wecom_api import FakeWeCom, running_fake_wecom
from tests.fakes.wire import Signed, WeComWire

TEAM = [
    # (wecom userid, name, roles)
    ("zhangsan", "张三", ["rep"]),
    ("lisi", "李四", ["rep"]),
    ("wangjl", "王经理", ["manager"]),
]


async def seed_team(db: Database, clock: SettableClock) -> dict[str, int]:
    """A region, a team led by 王经理 and two reps reporting to him; returns userid -> users.id."""
    now = clock.now()
    async with db.transaction() as s:
        region = OrgUnit(kind="region", name="华东", created_at=now)
        s.add(region)
        await s.flush()
        team = OrgUnit(kind="team", name="上海一组", parent_id=region.id, created_at=now)
        s.add(team)
        await s.flush()
        ids: dict[str, int] = {}
        for userid, name, roles in TEAM:
            user = User(name=name, wecom_userid=userid, roles=roles, team_id=team.id, created_at=now)
            s.add(user)
            await s.flush()
            ids[userid] = user.id
        team.manager_id = ids["wangjl"]  # 王经理 leads the team: the reps' manager (and direct superior)
        for userid, _, roles in TEAM:
            if "rep" in roles:
                (await s.get(User, ids[userid])).superior_id = ids["wangjl"]  # type: ignore[union-attr]
    return ids


class Bot:
    """A running salesbot plus the fake WeCom it talks to."""

    def __init__(self, client: TestClient[Any, Any], fake: FakeWeCom, deps: Deps, clock: SettableClock) -> None:
        self.client, self.fake, self.deps, self.clock = client, fake, deps, clock
        self.wire = WeComWire(TOKEN, AES_KEY, CORP_ID, AGENT_ID, clock=clock)

    async def post(self, signed: Signed) -> ClientResponse:
        return await self.client.post(f"/wecom/callback?{signed.query}", data=signed.body,
                                      headers={"Content-Type": "text/xml"})

    async def send(self, inner: str) -> ClientResponse:
        return await self.post(self.wire.envelope(inner))

    async def say(self, userid: str, text: str, **kw: Any) -> ClientResponse:
        resp = await self.send(self.wire.text(userid, text, **kw))
        assert resp.status == 200, await resp.text()
        return resp

    async def ask(self, userid: str, text: str) -> str:
        """Send one text and return the one message it brought back to the sender (run_sender=False apps)."""
        before = len(self.fake.delivered(userid))
        await self.say(userid, text)
        await self.settle()
        got = self.texts(userid)[before:]
        assert len(got) == 1, got
        return got[0]

    async def settle(self) -> None:
        """Wait for background processing, then deliver what it queued (no sleeps: awaits tasks)."""
        await self.deps.drain()
        assert self.deps.sender is not None
        busy = True
        while busy:  # the media fetcher may queue a notice (an expired attachment) for the sender
            busy = False
            while await self.deps.sender.run_once(self.clock.now()):
                busy = True
            while self.deps.media is not None and await self.deps.media.run_once(self.clock.now()):
                busy = True

    async def run_job(self, name: str) -> int:
        """Run a registered job (`salesbot jobs run NAME`) at the clock's now, then deliver what it queued."""
        from jobs.registry import registry

        count = await registry()[name](self.deps, self.clock.now())
        await self.settle()
        return count

    def texts(self, userid: str) -> list[str]:
        """What the fake WeCom delivered to one person, as text (cards as their title)."""
        out = []
        for m in self.fake.delivered(userid):
            card = m.body.get("template_card") or {}
            out.append(m.content or str((card.get("main_title") or {}).get("title", m.msgtype)))
        return out

    async def inbox(self) -> list[InboxMessage]:
        async with self.deps.db.sessions() as s:
            return list((await s.scalars(select(InboxMessage).order_by(InboxMessage.id))).all())

    async def outbox(self) -> list[OutboxMessage]:
        async with self.deps.db.sessions() as s:
            return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


@functools.cache
def shared_lexicon() -> Lexicon:
    """One jieba Lexicon for the whole test run (each costs ~1 s and ~190 MiB): the apps share it."""
    cache = Path(tempfile.mkdtemp(prefix="salesbot-jieba-"))  # not the shared system temp directory
    return Lexicon.load(make_settings("sqlite+aiosqlite://").with_overrides(nlu={"cache_dir": str(cache)}))


@asynccontextmanager
async def running_bot(
    db_url: str, clock: SettableClock, *, fake: FakeWeCom | None = None, settings: Settings | None = None,
    overrides: dict[str, dict[str, Any]] | None = None, **app_kwargs: Any,
) -> AsyncIterator[Bot]:
    """Start the app (real TCP on 127.0.0.1) against a fake WeCom; the caller seeds the directory."""
    async with _fake(clock, fake) as api, _media_dir() as media_dir:
        settings = settings or make_settings(db_url, api_base=api.api_base, media={"dir": media_dir})
        if overrides:
            settings = settings.with_overrides(**overrides)
        app_kwargs.setdefault("lexicon", shared_lexicon())
        app = create_app(settings, clock, run_scheduler=False, **app_kwargs)
        server = TestServer(app, host="127.0.0.1")
        async with TestClient(server) as client:
            yield Bot(client, api, app[DEPS], clock)


@asynccontextmanager
async def _media_dir() -> AsyncIterator[str]:
    """Attachments the fetcher downloads (R6) go to a scratch directory, never the working directory."""
    with tempfile.TemporaryDirectory(prefix="salesbot-media-") as path:
        yield path


@asynccontextmanager
async def _fake(clock: SettableClock, fake: FakeWeCom | None) -> AsyncIterator[FakeWeCom]:
    if fake is not None:
        yield fake
        return
    async with running_fake_wecom(clock) as started:
        yield started


async def seed_customers(db: Database, clock: SettableClock, ids: dict[str, int]) -> dict[str, int]:
    """Customers and open opportunities for the seeded team; returns a short key -> customers.id.

    华远科技 (alias 华远) and 宏达零售 belong to 张三, 华远物流 to 李四; each has one open opportunity
    (华远科技 in 需求诊断)."""
    from store.models import Customer, CustomerAlias, Opportunity

    now = clock.now()
    rows = [
        ("huayuan", "上海华远科技有限公司", ids["zhangsan"], ["华远"], "需求诊断"),
        ("hongda", "宏达零售", ids["zhangsan"], [], "触达"),
        ("hylogistics", "华远物流", ids["lisi"], [], "触达"),
    ]
    out: dict[str, int] = {}
    async with db.transaction() as s:
        for key, name, owner, aliases, stage in rows:
            customer = Customer(name=name, owner_id=owner, industry="IT服务", created_at=now)
            customer.aliases = [CustomerAlias(alias=a) for a in aliases]
            s.add(customer)
            await s.flush()
            s.add(Opportunity(name=f"{name}项目", customer_id=customer.id, owner_id=owner, stage=stage,
                              stage_entered_at=now, last_progress_at=now, created_at=now))
            out[key] = customer.id
    return out
