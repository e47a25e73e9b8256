"""Persisted conversation state (flow, step, data, expiry): survives restarts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import ConversationState


class ConversationRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def load(self, channel: str, key: str, now: datetime) -> ConversationState | None:
        """The live state for a conversation; an expired one is cleared and reported as absent."""
        row = (
            await self._s.execute(
                select(ConversationState).where(
                    ConversationState.channel == channel, ConversationState.conversation_key == key
                )
            )
        ).scalar_one_or_none()
        if row is not None and row.expires_at is not None and row.expires_at <= now:
            row.flow, row.step, row.data, row.expires_at = None, None, {}, None
            row.updated_at = now
        return row

    async def save(
        self,
        channel: str,
        key: str,
        *,
        user_id: int | None,
        flow: str | None,
        step: str | None,
        data: dict[str, Any],
        now: datetime,
        ttl: timedelta,
    ) -> ConversationState:
        row = await self.load(channel, key, now)
        if row is None:
            row = ConversationState(channel=channel, conversation_key=key, user_id=user_id, updated_at=now)
            self._s.add(row)
        row.user_id = user_id
        row.flow, row.step, row.data = flow, step, dict(data)
        row.expires_at = now + ttl if flow else None
        row.updated_at = now
        return row
