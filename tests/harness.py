"""The real wire in tests: the full aiohttp app on 127.0.0.1, a fake WeCom API, a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import create_app
from bot.clock import SettableClock
from bot.config import Settings
from bot.deps import DEPS, Deps
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
    """A region, a team and three people; returns userid -> users.id."""
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
    return ids


class Bot:
    """A running salesbot plus the fake WeCom it talks to."""

    def __init__(self, client: TestClient[Any, Any], fake: FakeWeCom, deps: Deps, clock: SettableClock) -> None:
        self.client, self.fake, self.deps, self.clock = client, fake, deps, clock
        self.wire = WeComWire(TOKEN, AES_KEY, CORP_ID, AGENT_ID)

    async def post(self, signed: Signed) -> ClientResponse:
        return await self.client.post(f"/wecom/callback?{signed.query}", data=signed.body,
                                      headers={"Content-Type": "text/xml"})

    async def send(self, inner: str) -> ClientResponse:
        return await self.post(self.wire.envelope(inner))

    async def say(self, userid: str, text: str, **kw: Any) -> ClientResponse:
        resp = await self.send(self.wire.text(userid, text, **kw))
        assert resp.status == 200, await resp.text()
        return resp

    async def settle(self) -> None:
        """Wait for background processing, then deliver what it queued (no sleeps: awaits tasks)."""
        await self.deps.drain()
        assert self.deps.sender is not None
        while await self.deps.sender.run_once(self.clock.now()):
            pass

    async def inbox(self) -> list[InboxMessage]:
        async with self.deps.db.sessions() as s:
            return list((await s.scalars(select(InboxMessage).order_by(InboxMessage.id))).all())

    async def outbox(self) -> list[OutboxMessage]:
        async with self.deps.db.sessions() as s:
            return list((await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all())


@asynccontextmanager
async def running_bot(
    db_url: str, clock: SettableClock, *, fake: FakeWeCom | None = None, settings: Settings | None = None,
    **app_kwargs: Any,
) -> AsyncIterator[Bot]:
    """Start the app (real TCP on 127.0.0.1) against a fake WeCom; the caller seeds the directory."""
    async with _fake(clock, fake) as api:
        settings = settings or make_settings(db_url, api_base=api.api_base)
        app = create_app(settings, clock, run_scheduler=False, **app_kwargs)
        server = TestServer(app, host="127.0.0.1")
        async with TestClient(server) as client:
            yield Bot(client, api, app[DEPS], clock)


@asynccontextmanager
async def _fake(clock: SettableClock, fake: FakeWeCom | None) -> AsyncIterator[FakeWeCom]:
    if fake is not None:
        yield fake
        return
    async with running_fake_wecom(clock) as started:
        yield started
