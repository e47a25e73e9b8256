"""Customers and the funnel: leads, opportunities, activities, tasks, stage moves, attachments and key
actions (R1–R6, R14–R17)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from store.models.base import Base, BigId, Money


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    industry: Mapped[str | None] = mapped_column(String(64), default=None)
    customer_type: Mapped[str | None] = mapped_column(String(64), default=None)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), default=None)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None, index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    aliases: Mapped[list[CustomerAlias]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin"
    )


class CustomerAlias(Base):
    __tablename__ = "customer_aliases"
    __table_args__ = (UniqueConstraint("customer_id", "alias"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(200), index=True)
    customer: Mapped[Customer] = relationship(back_populates="aliases")


class Lead(Base):
    """线索: created_at is the customer's first inquiry (R1, R2)."""

    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_unassigned", "assigned_at", "created_at"),
        Index("ix_leads_created", "created_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    title: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), default=None)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("org_units.id"), default=None)
    source: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime]
    assigned_at: Mapped[datetime | None] = mapped_column(default=None)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None, index=True)
    first_contact_at: Mapped[datetime | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class Opportunity(Base):
    """商机: stage timing drives R3, R4, R5; status open | won | lost | silent."""

    __tablename__ = "opportunities"
    __table_args__ = (
        Index("ix_opps_status_stage_entered", "status", "stage_entered_at"),
        Index("ix_opps_status_progress", "status", "last_progress_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    name: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    stage_entered_at: Mapped[datetime]
    last_progress_at: Mapped[datetime]
    amount: Mapped[Decimal | None] = mapped_column(Money, default=None)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class Activity(Base):
    """过程记录: visit, meeting, call, wechat, doc, approval (R13, R14, R15, R19)."""

    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_opp_time", "opportunity_id", "occurred_at"),
        Index("ix_activities_customer_time", "customer_id", "occurred_at"),
        Index("ix_activities_user_time", "user_id", "occurred_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), default=None)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"), default=None)
    occurred_at: Mapped[datetime]
    duration_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    lat: Mapped[float | None] = mapped_column(default=None)
    lng: Mapped[float | None] = mapped_column(default=None)
    location_label: Mapped[str | None] = mapped_column(String(200), default=None)
    conclusion: Mapped[str | None] = mapped_column(Text, default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    note_chars: Mapped[int] = mapped_column(Integer, default=0)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    source: Mapped[str] = mapped_column(String(16))  # wecom | dingtalk | api | import
    source_ref: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    created_at: Mapped[datetime]
    # R14: "到达华远" opens a visit (status open, occurred_at = arrival); "拜访完成" closes it (done).
    status: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    # R15: keywords by tag (competitor, budget, decision_maker, pain_point, timeline).
    tags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    contact: Mapped[str | None] = mapped_column(String(64), default=None)  # whom the rep met ("王总")
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class FollowUpTask(Base):
    """A next step with a date, from a check-in or a note ("下周报价" → due next Monday) (R14)."""

    __tablename__ = "follow_up_tasks"
    __table_args__ = (
        Index("ix_tasks_status_due", "status", "due_on"),
        Index("ix_tasks_user_status", "user_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), default=None)
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"), default=None)
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activities.id", ondelete="SET NULL"), default=None)
    title: Mapped[str] = mapped_column(Text)
    due_on: Mapped[date]
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done | cancelled
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class StageMove(Base):
    """Every stage change of an opportunity: R6 gates, forced moves (audited), R12 transition rates."""

    __tablename__ = "stage_moves"
    __table_args__ = (
        Index("ix_stage_moves_opp_at", "opportunity_id", "at"),
        Index("ix_stage_moves_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"))
    from_stage: Mapped[str] = mapped_column(String(32))
    to_stage: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    source_ref: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)


class Attachment(Base):
    """A file or image a rep sent (R6). The media is downloaded by jobs/media_fetch.py outside any
    transaction, within the platform's validity (WeCom: 3 days).

    status: pending -> stored, or failed (retried at next_attempt_at) -> expired when past expires_at.
    """

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_status_next", "status", "next_attempt_at"),
        UniqueConstraint("channel", "media_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    media_id: Mapped[str] = mapped_column(String(200))
    msg_type: Mapped[str] = mapped_column(String(16))  # image | file | voice | video
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), default=None)
    key_action_id: Mapped[int | None] = mapped_column(
        ForeignKey("key_actions.id", ondelete="SET NULL"), default=None, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="pending")
    received_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    file_name: Mapped[str | None] = mapped_column(String(255), default=None)
    content_type: Mapped[str | None] = mapped_column(String(128), default=None)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    path: Mapped[str | None] = mapped_column(String(500), default=None)
    stored_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class OwnershipConflict(Base):
    """R17: one customer followed by ≥ 2 reps within the window; one row per customer and period
    (the month it was detected); the sweeps issue alerts the manager and sets notified_at."""

    __tablename__ = "ownership_conflicts"
    __table_args__ = (UniqueConstraint("customer_id", "period"), Index("ix_conflicts_notified", "notified_at"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    period: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    rep_ids: Mapped[list[Any]] = mapped_column(default=list)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    notified_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]


class StandupAnswer(Base):
    """R16: a rep's Monday stand-up answer, one per rep and week (the latest answer wins)."""

    __tablename__ = "standup_answers"
    __table_args__ = (UniqueConstraint("user_id", "week"), Index("ix_standup_week", "week"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    week: Mapped[date]  # the Monday (Asia/Shanghai) of the week answered
    stuck: Mapped[str | None] = mapped_column(Text, default=None)
    stuck_customer_ids: Mapped[list[Any]] = mapped_column(default=list)
    support: Mapped[str | None] = mapped_column(Text, default=None)
    support_user_ids: Mapped[list[Any]] = mapped_column(default=list)
    resolve_by: Mapped[date | None] = mapped_column(default=None)
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    raw: Mapped[str] = mapped_column(Text)
    prompted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class KeyAction(Base):
    """关键动作 on an opportunity: complete = attachment + owner's sign-off (R6, R9)."""

    __tablename__ = "key_actions"
    __table_args__ = (UniqueConstraint("opportunity_id", "name"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str | None] = mapped_column(String(32), default=None)
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    attachment_path: Mapped[str | None] = mapped_column(String(500), default=None)
    attachment_media_id: Mapped[str | None] = mapped_column(String(200), default=None)
    attached_at: Mapped[datetime | None] = mapped_column(default=None)
    signed_off_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    signed_off_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]



# R9: the weekly aggregation reads one week of key actions (by due_at, or by created_at when due_at is empty)
# and one week of the attachment kinds' activities through these, for all reps at once.
Index("ix_key_actions_due_created", KeyAction.due_at, KeyAction.created_at)
Index("ix_activities_kind_time", Activity.kind, Activity.occurred_at)
