"""What the rules write: escalations and their notices, the audit log, finished sweep periods, R9 scores
and R11 exemptions."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId


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
