"""Outbox writes: called inside the unit of work that made the state change (never commits)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import Markdown, Reply, Text, reply_payload
from store.models import OutboxMessage

RECIPIENT_MAX = 64  # outbox.recipient is String(64): one userid (WeCom allows 64), or "a|b" while it fits


def split_utf8(text: str, max_bytes: int) -> list[str]:
    """Split text into parts of at most max_bytes UTF-8 bytes, never inside a character.

    Prefers a line break in the second half of a part so a reply reads naturally on a phone.
    """
    if max_bytes < 4:
        raise ValueError("max_bytes must allow one UTF-8 character")
    parts: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > max_bytes:
        cut = _fit(rest, max_bytes)
        newline = rest.rfind("\n", 0, cut)
        if newline >= cut // 2:
            cut = newline + 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest or not parts:
        parts.append(rest)
    return parts


def _fit(text: str, max_bytes: int) -> int:
    """The largest character count whose UTF-8 encoding fits in max_bytes."""
    total = 0
    for i, ch in enumerate(text):
        size = len(ch.encode("utf-8"))
        if total + size > max_bytes:
            return i
        total += size
    return len(text)


def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    recipient: str,
    reply: Reply,
    now: datetime,
    text_max_bytes: int = 2048,
    inbox_id: int | None = None,
    escalation_id: int | None = None,
    dedup_key: str | None = None,
) -> list[OutboxMessage]:
    """Add outbox rows for one reply (a long text or markdown becomes several rows, in order)."""
    bodies: list[Reply]
    if isinstance(reply, Text):
        bodies = [Text(part) for part in split_utf8(reply.content, text_max_bytes)]
    elif isinstance(reply, Markdown):  # markdown has the same 2048-byte limit
        bodies = [Markdown(part) for part in split_utf8(reply.content, text_max_bytes)]
    else:
        bodies = [reply]
    rows: list[OutboxMessage] = []
    for index, body in enumerate(bodies):
        key = dedup_key if dedup_key is None or index == 0 else f"{dedup_key}#{index}"
        row = OutboxMessage(
            channel=channel,
            recipient=recipient,
            kind=body.kind,
            payload=reply_payload(body),
            status="pending",
            attempts=0,
            next_attempt_at=now,
            inbox_id=inbox_id,
            escalation_id=escalation_id,
            dedup_key=key,
            created_at=now,
        )
        session.add(row)
        rows.append(row)
    return rows
