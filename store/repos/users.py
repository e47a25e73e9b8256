"""Reading the directory: who is this sender, who leads whom."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import OrgUnit, User

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

    async def leads(self, leader: User, member_id: int) -> bool:
        """Whether `leader` is over `member_id`: their direct superior, or the manager of their team or of
        the team's region (R4/R6: who may force or undo a member's stage move)."""
        member = await self._s.get(User, member_id)
        if member is None:
            return False
        if member.superior_id == leader.id:
            return True
        unit_id = member.team_id
        for _ in range(2):  # the team, then its region
            unit = await self._s.get(OrgUnit, unit_id) if unit_id is not None else None
            if unit is None:
                return False
            if unit.manager_id == leader.id:
                return True
            unit_id = unit.parent_id
        return False
