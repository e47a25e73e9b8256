"""Opportunities, contracts and payments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.importing import messages as m
from store.importing.base import KindImporter, Plan, Row, RowProblem, ids_by_external
from store.importing.spec import CONTRACTS, OPPORTUNITIES, PAYMENTS
from store.importing.tables import table_of
from store.importing.values import shown
from store.models import Contract, Customer, Opportunity, Payment, User

CLOSED = ("won", "lost")


def _given(row: Row, target: dict[str, Any], *columns: str) -> None:
    for col in columns:
        if row.has(col):
            target[col] = row.value(col)


class OpportunitiesImporter(KindImporter):
    """Upsert opportunities (R3-R5 timing): a new stage starts now unless stage_entered_at is given."""

    spec = OPPORTUNITIES
    table = table_of(Opportunity)

    async def load_refs(self, rows: Sequence[Row]) -> None:
        self.customers = await ids_by_external(self.session, table_of(Customer), (r.value("customer") for r in rows))
        self.users = await ids_by_external(self.session, table_of(User), (r.value("owner") for r in rows))

    def plan(self, row: Row) -> Plan:
        existing = self.existing.get(row.ext)
        target: dict[str, Any] = {}
        _given(row, target, "name", "stage", "amount", "status")
        for col in ("stage_entered_at", "last_progress_at", "created_at"):
            if row.value(col) is not None:
                target[col] = row.value(col)
        target["customer_id"] = self.ref_id(self.customers, "customer", row.value("customer"), m.UNKNOWN_CUSTOMER)
        target["owner_id"] = self.ref_id(self.users, "owner", row.value("owner"), m.UNKNOWN_USER)
        if existing is None or existing["stage"] != target["stage"]:
            target.setdefault("stage_entered_at", self.now)
            target.setdefault("last_progress_at", self.now)
        status = target.get("status", existing["status"] if existing is not None else "open")
        closed_at = row.value("closed_at")
        if status in CLOSED:
            kept = existing["closed_at"] if existing is not None else None
            target["closed_at"] = closed_at or kept or self.now
        elif closed_at is not None:
            raise RowProblem("closed_at", m.CLOSED_NOT_CLOSED)
        else:
            target["closed_at"] = None
        if existing is None and "created_at" not in target:
            target["created_at"] = min(self.now, target["stage_entered_at"], target["last_progress_at"])
        return self.build(row, target, existing)


class ContractsImporter(KindImporter):
    """Upsert contracts; status signed needs signed_at (R10 also needs legal_approved_at to count)."""

    spec = CONTRACTS
    table = table_of(Contract)

    async def load_refs(self, rows: Sequence[Row]) -> None:
        self.customers = await ids_by_external(self.session, table_of(Customer), (r.value("customer") for r in rows))
        self.users = await ids_by_external(self.session, table_of(User), (r.value("owner") for r in rows))
        self.opportunities = await ids_by_external(
            self.session, table_of(Opportunity), (r.value("opportunity") for r in rows), "customer_id"
        )

    def plan(self, row: Row) -> Plan:
        existing = self.existing.get(row.ext)
        target: dict[str, Any] = {}
        _given(row, target, "amount", "status", "legal_approved_at", "signed_at", "payment_terms_days")
        _given(row, target, "product_line")
        customer_id = self.ref_id(self.customers, "customer", row.value("customer"), m.UNKNOWN_CUSTOMER)
        target["customer_id"] = customer_id
        target["owner_id"] = self.ref_id(self.users, "owner", row.value("owner"), m.UNKNOWN_USER)
        if row.has("opportunity"):
            opp = row.value("opportunity")
            target["opportunity_id"] = self.ref_id(self.opportunities, "opportunity", opp, m.UNKNOWN_OPPORTUNITY)
            if opp is not None and self.opportunities[opp]["customer_id"] != customer_id:
                raise RowProblem("opportunity", m.OPP_OTHER_CUSTOMER.format(value=shown(opp)))

        def final(col: str, default: Any = None) -> Any:
            if col in target:
                return target[col]
            return existing[col] if existing is not None else default

        if final("status", "draft") == "signed" and final("signed_at") is None:
            raise RowProblem("signed_at", m.SIGNED_NEEDS_DATE)
        return self.build(row, target, existing)


class PaymentsImporter(KindImporter):
    """Upsert payments (R7, R8); a refund is a negative amount."""

    spec = PAYMENTS
    table = table_of(Payment)

    async def load_refs(self, rows: Sequence[Row]) -> None:
        self.contracts = await ids_by_external(self.session, table_of(Contract), (r.value("contract") for r in rows))

    def plan(self, row: Row) -> Plan:
        existing = self.existing.get(row.ext)
        target: dict[str, Any] = {
            "contract_id": self.ref_id(self.contracts, "contract", row.value("contract"), m.UNKNOWN_CONTRACT),
            "amount": row.value("amount"),
            "received_at": row.value("received_at"),
        }
        return self.build(row, target, existing)
