"""Messaging: the inbox (exactly once in), the outbox (delivered with the platform's rules), conversation state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId


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
