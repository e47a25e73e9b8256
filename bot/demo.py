"""`salesbot demo`: a sample team, the real server on SQLite, an in-process fake WeCom, and a scripted
conversation played through the real encrypted callback wire, printed as a chat transcript.

Later issues extend SCRIPT as features arrive.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from bot.app import create_app
from bot.clock import SHANGHAI, SettableClock
from bot.config import Settings, from_mapping
from bot.demo_money import play_money
from bot.demo_week import play_week
from bot.deps import DEPS, Deps
from bot.devtools.fake_wecom import FakeWeCom
from bot.devtools.wire import WeComWire
from store.db import Database
from store.importing import import_csv
from store.migrate import upgrade
from store.models import User

DEMO_START = datetime(2026, 11, 30, 9, 28, tzinfo=SHANGHAI)  # a Monday morning
KINDS = ("users", "customers", "leads", "opportunities", "contracts", "payments")


@dataclass(frozen=True)
class Step:
    """One line of the script: who does what, and what the transcript should say about it."""

    userid: str
    label: str
    build: Callable[[WeComWire], str]
    retries: int = 0  # WeCom re-delivering the same callback (no answer in 5 s)


DEMO_MEDIA = {
    "MEDIA_DEMO_REPORT": (b"%PDF-1.7\n% demo: requirements research report\n", "application/pdf"),
    "MEDIA_DEMO_SIGNATURE": (b"\xff\xd8\xff\xe0 demo: the customer's signed page", "image/jpeg"),
}


def _text(userid: str, text: str, retries: int = 0) -> Step:
    return Step(userid, text, lambda w: w.text(userid, text), retries=retries)


SCRIPT: tuple[Step, ...] = (
    _text("zhangsan", "帮助", retries=2),
    Step("zhangsan", "[位置] 上海市浦东新区张江高科",
         lambda w: w.location("zhangsan", 31.2035, 121.5914, "上海市浦东新区张江高科")),
    # R14: a visit in one message (location from the share above, next step → follow-up task).
    _text("zhangsan", "今日拜访完成 华远科技 1小时 客户认可方案，下周报价"),
    # R14: the same over three turns, each asking only for what is missing.
    Step("lisi", "[位置] 杭州市西湖区云帆大厦",
         lambda w: w.location("lisi", 30.2741, 120.1551, "杭州市西湖区云帆大厦")),
    _text("lisi", "拜访完了 云帆"),
    _text("lisi", "45分钟"),
    _text("lisi", "客户要再比较两家，周五前给反馈"),
    # R15: a meeting note with its keywords and tags.
    _text("zhangsan", "纪要：鼎新王总关心预算，目前用的是用友，痛点是对账难、人工统计出错，希望月底前上线"),
    # R6: a stage move blocked by its gate, the attachments and sign-offs, then the move.
    _text("zhangsan", "鼎新 进入 报价"),
    Step("zhangsan", "[图片]", lambda w: w.image("zhangsan", "MEDIA_DEMO_REPORT")),
    _text("zhangsan", "需求调研报告"),
    Step("zhangsan", "[图片]", lambda w: w.image("zhangsan", "MEDIA_DEMO_SIGNATURE")),
    _text("zhangsan", "客户签字页"),
    _text("zhangsan", "确认 需求调研报告"),
    _text("zhangsan", "确认 客户签字页"),
    _text("zhangsan", "鼎新 进入 报价"),
    _text("zhangsan", "我的商机"),
    _text("zhangsan", "这周天气怎么样"),
    _text("lisi", "取消"),
    _text("visitor01", "你好，我想看看我的返点"),
)


def demo_settings(folder: Path, api_base: str) -> Settings:
    aes = base64.b64encode(os.urandom(32)).decode("ascii").rstrip("=")
    return from_mapping(
        {
            "database": {"url": f"sqlite+aiosqlite:///{folder / 'demo.db'}"},
            "wecom": {
                "corp_id": "wwdemo0000000001",
                "agent_id": 1000002,
                "secret": secrets.token_urlsafe(24),
                "token": secrets.token_urlsafe(12),
                "encoding_aes_key": aes,
                "api_base": api_base,
            },
            "api": {"token": secrets.token_urlsafe(24)},
            "scheduler": {"enabled": False},
            "media": {"dir": str(folder / "media")},  # downloaded attachments stay in the demo's folder
            "nlu": {"cache_dir": str(folder / "jieba")},
        },
        env={},
    )


async def load_sample_team(settings: Settings, now: datetime) -> None:
    db = Database.open(settings.database.url)
    try:
        await upgrade(db.engine)
        data = resources.files("bot") / "demo_data"
        for kind in KINDS:
            with resources.as_file(data / f"{kind}.csv") as path:
                report = await import_csv(db, kind, path, now, stages=settings.funnel.stages)
            if report.errors:
                raise RuntimeError(f"sample {kind}.csv did not import cleanly: {report.errors[:3]}")
    finally:
        await db.close()


async def _names(deps: Deps) -> dict[str, str]:
    async with deps.db.sessions() as s:
        return {u.wecom_userid: u.name for u in (await s.scalars(select(User))).all() if u.wecom_userid}


def _print_bubble_kw(when: datetime, who: str, text: str, bot: bool) -> None:
    _print_bubble(when, who, text, bot=bot)


def _print_bubble(when: datetime, who: str, text: str, *, bot: bool) -> None:
    stamp = when.astimezone(SHANGHAI).strftime("%H:%M")
    arrow = "🤖 salesbot → " + who if bot else who
    print(f"[{stamp}] {arrow}")
    for line in text.splitlines() or [""]:
        print(f"    {line}")
    print()


async def run_demo(keep: bool = False) -> int:
    folder = Path(tempfile.mkdtemp(prefix="salesbot-demo-"))
    clock = SettableClock(DEMO_START)
    fake = FakeWeCom(clock, corp_id="wwdemo0000000001", secret="", agent_id=1000002)
    try:
        api_base = await fake.start()
        settings = demo_settings(folder, api_base)
        fake.secret = settings.wecom.secret
        await load_sample_team(settings, clock.now())
        for media_id, (data, content_type) in DEMO_MEDIA.items():  # what the reps' images hold
            fake.add_media(media_id, data, content_type)
        app = create_app(settings, clock, run_sender=False, run_scheduler=False)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        deps = app[DEPS]
        names = await _names(deps)
        wire = WeComWire(settings.wecom.token, settings.wecom.encoding_aes_key, settings.wecom.corp_id,
                         settings.wecom.agent_id, clock=clock)
        print("salesbot 演示：示例团队已导入，服务器运行在 SQLite 上，企业微信 API 为进程内模拟。")
        print("每条消息都经过真实的签名 + 加密回调发送到服务器，回复经由模拟的企业微信 API 送达。\n")
        try:
            async with aiohttp.ClientSession() as http:
                for step in SCRIPT:
                    clock.advance(timedelta(minutes=1))
                    inner = step.build(wire)
                    who = names.get(step.userid, f"{step.userid}（未开通）")
                    _print_bubble(clock.now(), who, step.label, bot=False)
                    for attempt in range(1 + step.retries):
                        envelope = wire.envelope(inner)
                        async with http.post(f"http://{host}:{port}/wecom/callback?{envelope.query}",
                                             data=envelope.body) as resp:
                            if resp.status != 200:
                                raise RuntimeError(f"callback answered {resp.status}")
                        if attempt:
                            print(f"    （企业微信重发了同一条消息 第{attempt}次 → 200，已去重，不会重复处理）\n")
                    await deps.drain()
                    assert deps.sender is not None and deps.media is not None
                    before = fake.delivered_count(step.userid)
                    while await deps.media.run_once(clock.now()):  # attachments are downloaded (R6)
                        pass
                    while await deps.sender.run_once(clock.now()):
                        pass
                    for message in fake.delivered(step.userid)[before:]:
                        _print_bubble(clock.now(), who, message.content or f"[{message.msgtype}]", bot=True)
                async def post(inner: str) -> None:
                    envelope = wire.envelope(inner)
                    async with http.post(f"http://{host}:{port}/wecom/callback?{envelope.query}",
                                         data=envelope.body) as resp:
                        if resp.status != 200:
                            raise RuntimeError(f"callback answered {resp.status}")

                await play_week(deps, fake, wire, clock, names, post, _print_bubble_kw)

                async def put_json(kind: str, body: Any) -> int:
                    async with http.put(f"http://{host}:{port}/api/v1/{kind}", json=body,
                                        headers={"Authorization": f"Bearer {settings.api.token}"}) as resp:
                        return resp.status

                await play_money(deps, fake, wire, clock, names, post, put_json, _print_bubble_kw)
            inbox = deps.metrics.total("salesbot_inbound_total")
            dups = deps.metrics.total("salesbot_inbound_duplicates_total")
            print(f"—— 共收到 {int(inbox)} 条消息，去重 {int(dups)} 条重发；"
                  f"企业微信 API 共送达 {fake.delivered_count()} 条回复。")
        finally:
            await runner.cleanup()
    finally:
        await fake.close()
        if keep:
            print(f"演示数据保存在 {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0
