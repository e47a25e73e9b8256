"""Contracts, payments, R7 bonus freezes and the R8 rebate change log."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId, Money


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
