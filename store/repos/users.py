"""Reading the directory: who is this sender, who leads whom."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import User

# Which users column holds a channel's platform id.
CHANNEL_ID_COLUMN = {"wecom": User.wecom_userid, "local": User.wecom_userid, "dingtalk": User.dingtalk_staff_id}


class UserRepo:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def by_channel_id(self, channel: str, platform_id: str) -> User | None:
        """The active user behind a verified platform id, or None (identity never comes from text)."""
        column = CHANNEL_ID_COLUMN.get(channel)
        if column is None or not platform_id:
            return None
        result = await self._s.execute(select(User).where(column == platform_id, User.active.is_(True)))
        return result.scalar_one_or_none()

    async def get(self, user_id: int) -> User | None:
        return await self._s.get(User, user_id)
