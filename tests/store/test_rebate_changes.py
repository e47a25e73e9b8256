"""R8: every write to a rep's rebate inputs moves their version — through the ORM, raw SQL, an update, a delete,
a customer's industry, a reassigned contract — so 我的返点 may keep a rep's contracts in memory per version."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise

from sqlalchemy import func, select, text

from bot.clock import SettableClock
from store.db import Database
from store.models import BonusFreeze, Contract, Customer, Payment, RebateChange, User
from store.repos.contracts import ContractRepo, RebateBook


async def test_every_write_moves_the_owner_version(db: Database, clock: SettableClock) -> None:
    now = clock.now()
    async with db.transaction() as s:
        a = User(name="甲", wecom_userid="a", created_at=now)
        b = User(name="乙", wecom_userid="b", created_at=now)
        s.add_all([a, b])
        await s.flush()
        customer = Customer(name="客户", owner_id=a.id, industry="IT服务", created_at=now)
        s.add(customer)
        await s.flush()
    versions: list[tuple[int, int]] = []

    async def snap() -> tuple[int, int]:
        async with db.sessions() as s:
            repo = ContractRepo(s)
            return (await repo.version(a.id)).newest, (await repo.version(b.id)).newest

    versions.append(await snap())
    assert versions[-1] == (0, 0)
    async with db.transaction() as s:
        contract = Contract(customer_id=customer.id, owner_id=a.id, amount=Decimal(1000), status="signed",
                            legal_approved_at=now, signed_at=now, created_at=now)
        s.add(contract)
        await s.flush()
        contract_id = contract.id
    writes = [
        lambda s: s.add(Payment(contract_id=contract_id, amount=Decimal(10), received_at=now, created_at=now)),
        lambda s: s.execute(text("UPDATE payments SET amount = 20 WHERE contract_id = :c"), {"c": contract_id}),
        lambda s: s.execute(text("UPDATE customers SET industry = '零售门店' WHERE id = :c"), {"c": customer.id}),
        lambda s: s.add(BonusFreeze(user_id=a.id, contract_id=contract_id, month="2026-11", reason="R7",
                                    created_at=now)),
        lambda s: s.execute(text("DELETE FROM payments WHERE contract_id = :c"), {"c": contract_id}),
    ]
    versions.append(await snap())
    for write in writes:
        async with db.transaction() as s:
            result = write(s)
            if result is not None and hasattr(result, "__await__"):
                await result
        versions.append(await snap())
    a_versions = [v for v, _ in versions]
    assert all(later > earlier for earlier, later in pairwise(a_versions))
    assert all(v == 0 for _, v in versions)  # 乙 untouched
    async with db.transaction() as s:  # reassigned: both reps' versions move
        await s.execute(text("UPDATE contracts SET owner_id = :b WHERE id = :c"), {"b": b.id, "c": contract_id})
    moved = await snap()
    assert moved[0] > a_versions[-1] and moved[1] > 0
    async with db.transaction() as s:
        deleted = await ContractRepo(s).prune_changes()
        assert deleted > 0
    assert await snap() == moved  # pruning keeps each rep's newest row
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(RebateChange)) == 2


def _sorted(book: RebateBook) -> tuple[list[object], list[object], list[object]]:
    return (sorted(book.contracts, key=lambda c: c.id), sorted(book.payments, key=repr),
            sorted(book.freezes, key=repr))


async def test_a_refresh_after_changes_equals_a_full_read(db: Database, clock: SettableClock) -> None:
    """What 我的返点 keeps in memory, refreshed from the contracts the changes name, is the book a full read
    gives — after new payments, a customer's new industry, a contract given away and one taken over."""
    now = clock.now()
    async with db.transaction() as s:
        a = User(name="甲", wecom_userid="a", created_at=now)
        b = User(name="乙", wecom_userid="b", created_at=now)
        s.add_all([a, b])
        await s.flush()
        customers = [Customer(name=f"客户{i}", owner_id=a.id, industry="IT服务", created_at=now) for i in range(4)]
        s.add_all(customers)
        await s.flush()
        contracts = [Contract(customer_id=c.id, owner_id=a.id if i < 3 else b.id, amount=Decimal(1000 + i),
                              status="signed", legal_approved_at=now, signed_at=now, created_at=now)
                     for i, c in enumerate(customers)]
        s.add_all(contracts)
        await s.flush()
        s.add(Payment(contract_id=contracts[0].id, amount=Decimal(100), received_at=now, created_at=now))
    async with db.sessions() as s:
        repo = ContractRepo(s)
        old_version, old_book = await repo.version(a.id), await repo.book(a.id)
    async with db.transaction() as s:
        s.add(Payment(contract_id=contracts[1].id, amount=Decimal(200), received_at=now, created_at=now))
        await s.execute(text("UPDATE customers SET industry = '零售门店' WHERE id = :c"), {"c": customers[2].id})
        await s.execute(text("UPDATE contracts SET owner_id = :b WHERE id = :c"), {"b": b.id, "c": contracts[0].id})
        await s.execute(text("UPDATE contracts SET owner_id = :a WHERE id = :c"), {"a": a.id, "c": contracts[3].id})
    async with db.sessions() as s:
        repo = ContractRepo(s)
        new_version = await repo.version(a.id)
        changed = await repo.changed_since(a.id, old_version, new_version)
        assert changed == {c.id for c in contracts}  # paid, customer changed, given away, taken over
        refreshed = old_book.refreshed(changed, await repo.book(a.id, changed))
        assert _sorted(refreshed) == _sorted(await repo.book(a.id))
        assert {c.id for c in refreshed.contracts} == {contracts[1].id, contracts[2].id, contracts[3].id}
    async with db.transaction() as s:
        await ContractRepo(s).prune_changes()
    async with db.sessions() as s:  # after pruning the history is gone: a full read, not a wrong refresh
        repo = ContractRepo(s)
        assert await repo.changed_since(a.id, new_version, await repo.version(a.id)) is None
