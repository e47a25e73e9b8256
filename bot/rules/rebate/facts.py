"""R8 rebate inputs: plain facts about contracts, payments and R7 bonus freezes.

The engine never sees ORM rows: a repository maps `Contract` (+ its `Customer`), `Payment` and `BonusFreeze`
rows to these. Times are timezone-aware; money is Decimal. A refund is a payment with a negative amount.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class ContractFacts:
    """One contract as the rebate engine needs it (R10 fields + what conditions may look at)."""

    id: int
    owner_id: int
    amount: Decimal
    status: str  # draft | signed | void
    legal_approved_at: datetime | None
    signed_at: datetime | None
    payment_terms_days: int | None = None
    product_line: str | None = None
    industry: str | None = None  # the customer's
    customer_type: str | None = None  # the customer's
    customer_name: str = ""

    @property
    def label(self) -> str:
        """How a rep recognises the contract: its customer's name, else its id."""
        return self.customer_name or f"#{self.id}"


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    """回款 against a contract; a refund is negative."""

    contract_id: int
    amount: Decimal
    received_at: datetime


@dataclass(frozen=True, slots=True)
class FreezeFacts:
    """R7: a rep's excess bonus for `month` ("YYYY-MM", Asia/Shanghai) frozen by an overdue contract."""

    contract_id: int
    user_id: int
    month: str
    reason: str
    released_at: datetime | None = None


# The names a `qualify` or rule condition may use, with their types (see the package docstring).
FIELDS: Mapping[str, type] = {
    "amount": Decimal,
    "collection_days": Decimal,
    "paid_ratio": Decimal,
    "days_since_signed": Decimal,
    "industry": str,
    "product_line": str,
    "customer_type": str,
    "payment_terms_days": Decimal,
}
# Fields fixed at signing: the only ones `qualify` may use, so tier progress never moves with collections.
SIGNING_FIELDS = frozenset({"amount", "industry", "product_line", "customer_type", "payment_terms_days"})
