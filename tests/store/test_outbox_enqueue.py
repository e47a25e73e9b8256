"""Outbox rows are written in the caller's transaction; long text and markdown are split in order."""

from __future__ import annotations

from sqlalchemy import select

from bot.channels.base import Markdown, TemplateCard, Text
from bot.clock import SettableClock
from store.models import OutboxMessage
from store.repos.outbox import enqueue


async def test_long_markdown_is_split_like_text(db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    content = "\n".join(f"> **第{i}条** 华远科技 方案呈现 已停留 {i} 天" for i in range(200))
    async with db.transaction() as s:
        rows = enqueue(s, channel="wecom", recipient="wangjl", reply=Markdown(content), now=clock.now())
        enqueue(s, channel="wecom", recipient="wangjl", reply=Text("短"), now=clock.now())
        enqueue(s, channel="wecom", recipient="wangjl", reply=TemplateCard({"task_id": "T"}), now=clock.now())
    assert len(rows) > 1
    async with db.sessions() as s:
        stored = (await s.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
    parts = [r.payload["content"] for r in stored if r.kind == "markdown"]
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert "".join(parts) == content
    assert [r.kind for r in stored][-2:] == ["text", "template_card"]


async def test_rolled_back_transaction_writes_no_outbox_row(db, clock: SettableClock) -> None:  # type: ignore[no-untyped-def]
    try:
        async with db.transaction() as s:
            enqueue(s, channel="wecom", recipient="a", reply=Text("x"), now=clock.now())
            raise RuntimeError("the state change failed")
    except RuntimeError:
        pass
    async with db.sessions() as s:
        assert (await s.scalars(select(OutboxMessage))).all() == []
