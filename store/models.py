"""SQLAlchemy 2 models: the whole schema of salesbot.

Later issues extend it through new Alembic migrations. Times are timezone-aware UTC
(store.types.UTCDateTime); money is Decimal (Numeric(14, 2)).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(14, 2, asdecimal=True)
# BIGINT on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()
    }


# ---------------------------------------------------------------- org and people


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


# ---------------------------------------------------------------- customers and the funnel


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


class Contract(Base):
    """合同: counts as signed only when status = signed AND legal approval is done (R10)."""

    __tablename__ = "contracts"
    __table_args__ = (Index("ix_contracts_owner_signed", "owner_id", "signed_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"), default=None)
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | signed | void
    legal_approved_at: Mapped[datetime | None] = mapped_column(default=None)
    signed_at: Mapped[datetime | None] = mapped_column(default=None)
    payment_terms_days: Mapped[int | None] = mapped_column(Integer, default=None)
    product_line: Mapped[str | None] = mapped_column(String(64), default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime | None] = mapped_column(default=None)


class Payment(Base):
    """回款 against a contract (R7, R8). A refund is a negative amount."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    received_at: Mapped[datetime]
    created_at: Mapped[datetime]


# ---------------------------------------------------------------- messaging


class InboxMessage(Base):
    """Every verified inbound message, committed before the platform gets its 200.

    status: pending -> done, or failed (retried at next_attempt_at until max attempts, then dead).
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "dedup_key"),
        Index("ix_inbox_status_next", "status", "next_attempt_at"),
        # A conversation's earlier unprocessed rows are looked up before each message.
        Index("ix_inbox_conversation", "channel", "sender", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(255))
    msg_type: Mapped[str] = mapped_column(String(32))
    event: Mapped[str | None] = mapped_column(String(64), default=None)
    sender: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(32), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)


class OutboxMessage(Base):
    """A message to deliver, written in the same transaction as the state change that caused it.

    status: pending -> sent | dead. kind: text | markdown | template_card | update_card.
    busy_retries: -1 ("system busy") answers so far (the sender gives up past [outbox] busy_retries).
    duplicate_check_interval_s: the `duplicate_check_interval` of this row's message/send requests, fixed
    at its first claim so every resend is byte-identical (jobs/outbox/request.py says why it varies).
    response_code: an interactive template_card's code from message/send, for
    message/update_template_card (single-use, 24 h).
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_recipient_sent", "recipient", "sent_at"),
        # Per-recipient order and interval rotation look up a recipient's rows by id.
        Index("ix_outbox_channel_recipient_id", "channel", "recipient", "id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_errcode: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"), default=None)
    escalation_id: Mapped[int | None] = mapped_column(ForeignKey("escalations.id"), default=None)
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    platform_msgid: Mapped[str | None] = mapped_column(String(128), default=None)
    busy_retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    duplicate_check_interval_s: Mapped[int | None] = mapped_column(Integer, default=None)
    response_code: Mapped[str | None] = mapped_column(String(128), default=None)


class ConversationState(Base):
    """A user's flow position (flow, step, data), persisted so it survives restarts."""

    __tablename__ = "conversation_state"
    __table_args__ = (UniqueConstraint("channel", "conversation_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    conversation_key: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    flow: Mapped[str | None] = mapped_column(String(64), default=None)
    step: Mapped[str | None] = mapped_column(String(64), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime]


class Escalation(Base):
    """A nudge/escalation, unique per (rule, subject, period) so nothing fires twice (R1-R7, R12-R17)."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("rule", "subject_type", "subject_id", "period"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(String(8))
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    task_id: Mapped[str | None] = mapped_column(String(128), unique=True, default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    acted_at: Mapped[datetime | None] = mapped_column(default=None)
    acted_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    action: Mapped[str | None] = mapped_column(String(32), default=None)
    snoozed_until: Mapped[datetime | None] = mapped_column(default=None)


class Notice(Base):
    """A rule's message to one person (R1–R17): written with its escalation, held until working hours
    (R18), then sent by jobs/notices.py — cards one by one, texts due together as one digest per person.

    status: pending -> sent (outbox_id names the outbox row that carried it), withdrawn (its subject was fixed
    while it waited), or dead (a recipient the outbox cannot hold: logged, never sent).
    """

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("escalation_id", "recipient"),
        Index("ix_notices_status_due", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"))
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(String(255))  # a userid, or "a|b" for one card to several people
    kind: Mapped[str] = mapped_column(String(16))  # text | card
    text: Mapped[str | None] = mapped_column(Text, default=None)
    card: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), default=None)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class AuditLog(Base):
    """Who did what, when: forced stage moves, finance releases, imports, org syncs."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_subject", "subject_type", "subject_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor_label: Mapped[str | None] = mapped_column(String(128), default=None)
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(32), default=None)
    subject_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class BonusFreeze(Base):
    """R7: a rep's excess bonus (超额奖金) for a month, frozen by an overdue receivable on one contract.

    Written by the R7 sweep with its escalation; released (released_at) when the contract is paid in full
    (the sweep, released_by empty) or by finance (released_by). One row per contract and month.
    """

    __tablename__ = "bonus_freezes"
    __table_args__ = (
        UniqueConstraint("contract_id", "month"),
        Index("ix_bonus_freezes_user_month", "user_id", "month"),
        Index("ix_bonus_freezes_released", "released_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    month: Mapped[str] = mapped_column(String(7))  # "YYYY-MM", Asia/Shanghai
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    released_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)


class SweepPeriod(Base):
    """A daily or weekly rule sweep's finished period (R2 days, R12/R13 weeks): later runs of the period are
    one indexed look-up. Its subjects fire once each through their own escalations."""

    __tablename__ = "sweep_periods"
    __table_args__ = (UniqueConstraint("rule", "period"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(32))
    done_at: Mapped[datetime]


# ---------------------------------------------------------------- R9 process health score, R11 exemptions


class ActivityAttachment(Base):
    """A file that documents an activity (R9 completeness: an activity of a kind in `[score] attachment_kinds`,
    e.g. "doc", needs one). Key actions hold theirs on the key action row; activities link here."""

    __tablename__ = "activity_attachments"
    __table_args__ = (UniqueConstraint("activity_id", "attachment_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachments.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]


class WeeklyScore(Base):
    """R9: one rep's process health score for one week (Asia/Shanghai ISO week), with the counts behind it so
    "我的过程分" can explain it. Recomputed in place (unique per user and week) by store/repos/scores.py."""

    __tablename__ = "weekly_scores"
    __table_args__ = (UniqueConstraint("user_id", "week"), Index("ix_weekly_scores_week", "week"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    week: Mapped[str] = mapped_column(String(10))  # "2026-W49"
    week_start: Mapped[date]  # its Monday
    due: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer)
    on_time: Mapped[int] = mapped_column(Integer)
    need_attachment: Mapped[int] = mapped_column(Integer)
    with_attachment: Mapped[int] = mapped_column(Integer)
    completion: Mapped[Decimal] = mapped_column(Numeric(5, 4, asdecimal=True))
    timeliness: Mapped[Decimal] = mapped_column(Numeric(5, 4, asdecimal=True))
    completeness: Mapped[Decimal] = mapped_column(Numeric(5, 4, asdecimal=True))
    score: Mapped[Decimal] = mapped_column(Numeric(4, 1, asdecimal=True))
    computed_at: Mapped[datetime]


class Exemption(Base):
    """R11: a rep's exemption from up to 3 non-core fields for one week (the week it applies to)."""

    __tablename__ = "exemptions"
    __table_args__ = (UniqueConstraint("user_id", "week"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    week: Mapped[str] = mapped_column(String(10))  # "2026-W50"
    week_start: Mapped[date]
    fields: Mapped[list[Any]] = mapped_column(default=list)
    granted_at: Mapped[datetime]


# R9: the weekly aggregation reads one week of key actions (by due_at, or by created_at when due_at is empty)
# and one week of the attachment kinds' activities through these, for all reps at once.
Index("ix_key_actions_due_created", KeyAction.due_at, KeyAction.created_at)
Index("ix_activities_kind_time", Activity.kind, Activity.occurred_at)


class RebateChange(Base):
    """R8: one change to a rep's rebate inputs — a contract, a payment, a bonus freeze, or a customer of their
    contracts inserted, updated or deleted. Written by database triggers (migration 0006), so every writer is
    covered (the app, the importer, the API, an admin's SQL); append-only, so concurrent writers never wait on
    each other. A rep's version is their newest row's id: 我的返点 keeps a rep's contracts in memory per version
    (bot/views/cache.py) and, when the version moves, re-reads only the contracts named since, instead of
    10,000 rows per question. Rows older than a day are pruned daily (each rep's newest is kept)."""

    __tablename__ = "rebate_changes"
    __table_args__ = (Index("ix_rebate_changes_user_id_id", "user_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    contract_id: Mapped[int | None] = mapped_column(BigInteger, default=None)  # the contract concerned
    # When (the database's clock, naive UTC): pruning keeps a day of history for readers catching up.
    at: Mapped[datetime] = mapped_column(DateTime(), server_default=text("CURRENT_TIMESTAMP"))
