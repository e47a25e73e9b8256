"""Org and people: regions, teams and the directory's users (roles, superior)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId


class OrgUnit(Base):
    """Region (区域) or team; a team's parent is its region."""

    __tablename__ = "org_units"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # region | team
    name: Mapped[str] = mapped_column(String(128))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), default=None)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", use_alter=True, ondelete="SET NULL"), default=None
    )
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    wecom_dept_id: Mapped[int | None] = mapped_column(Integer, unique=True, default=None)
    dingtalk_dept_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class User(Base):
    """A person in the directory: rep, manager, finance, delivery, sales ops (roles)."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    wecom_userid: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    dingtalk_staff_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    roles: Mapped[list[Any]] = mapped_column(default=list)  # e.g. ["rep"], ["manager", "rep"]
    team_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), default=None, index=True)
    superior_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    mobile: Mapped[str | None] = mapped_column(String(32), default=None)
    email: Mapped[str | None] = mapped_column(String(128), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
