"""Attachments a rep sent (R6): stored pending, downloaded by jobs/media_fetch.py, tied to a key action."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Attachment


class AttachmentRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get(self, attachment_id: int) -> Attachment | None:
        return await self._s.get(Attachment, attachment_id)

    async def lock_many(self, ids: list[int]) -> list[Attachment]:
        """The attachments with these ids, locked (FOR UPDATE, in id order) against the fetcher."""
        if not ids:
            return []
        rows = await self._s.scalars(
            select(Attachment).where(Attachment.id.in_(ids)).order_by(Attachment.id).with_for_update()
        )
        return list(rows.all())

    async def by_media(self, channel: str, media_id: str) -> Attachment | None:
        return (
            await self._s.execute(
                select(Attachment).where(Attachment.channel == channel, Attachment.media_id == media_id)
            )
        ).scalar_one_or_none()

    async def add(self, attachment: Attachment) -> Attachment:
        self._s.add(attachment)
        await self._s.flush()
        return attachment

    async def unassigned(self, user_id: int, since: datetime) -> list[Attachment]:
        """The rep's attachments not yet tied to a key action, newest first."""
        rows = await self._s.scalars(
            select(Attachment)
            .where(Attachment.user_id == user_id, Attachment.key_action_id.is_(None),
                   Attachment.received_at >= since, Attachment.status != "expired")
            .order_by(Attachment.id.desc())
        )
        return list(rows.all())

    async def for_key_action(self, key_action_id: int) -> list[Attachment]:
        rows = await self._s.scalars(
            select(Attachment).where(Attachment.key_action_id == key_action_id).order_by(Attachment.id)
        )
        return list(rows.all())


# R6: what the rep is told when a file they attached can no longer be fetched.
EXPIRED_NOTICE = "⚠️ 你发给「{action}」的附件没能从企业微信取到（已过期），这个动作仍缺附件，请重新发送一次。"


async def release_expired(session: AsyncSession, attachment_id: int, now: datetime, *, text_max_bytes: int) -> bool:
    """R6: an attachment given up as expired no longer completes its key action (if it was the one that
    did and nothing was stored): the key action is un-attached and the rep told, once (outbox dedup key).
    Returns True when a key action was released. Runs in the caller's transaction."""
    from bot.channels.base import Text
    from store.models import KeyAction, User
    from store.repos.outbox import enqueue

    row = await session.get(Attachment, attachment_id)
    if row is None or row.key_action_id is None:
        return False
    key_action = await session.get(KeyAction, row.key_action_id, with_for_update=True)
    if key_action is None or key_action.attachment_path or key_action.attachment_media_id != row.media_id:
        return False
    key_action.attachment_media_id, key_action.attached_at = None, None
    key_action.signed_off_by, key_action.signed_off_at = None, None  # signed for a file it no longer has
    user = await session.get(User, row.user_id)
    if user is not None and user.active and user.wecom_userid:
        enqueue(session, channel=row.channel, recipient=user.wecom_userid,
                reply=Text(EXPIRED_NOTICE.format(action=key_action.name)), now=now, text_max_bytes=text_max_bytes,
                dedup_key=f"media-expired:{row.id}")
    return True
