"""R7 overdue receivable: a signed contract (R10) with money unpaid more than `[rules] receivable_days` after
its signing → one tri-party work-order card (财务-销售-交付) to finance, the owner and delivery, as one
message, once per contract; and the owner's excess bonus for the month is frozen (a BonusFreeze row, in the
same transaction). A freeze whose contract is later paid in full is released here (released_at; finance's
own release is issue 5's command).

What is unpaid is summed in Python as Decimal: SQLite keeps NUMERIC as a binary float, so SQL only narrows
the candidates (with half a cent of slack) and bot/rules/receivables.py decides.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import SHANGHAI
from bot.deps import Deps
from bot.rules.receivables import freeze_month, is_overdue, outstanding
from bot.rules.signed import signed_sql
from jobs.notices import calendar_of
from jobs.sweeps.base import BATCH, not_fired, userids
from jobs.sweeps.periodic import money, recipient_groups, send_card, task_id, work_card
from store.models import BonusFreeze, Contract, Customer, Payment, User
from store.repos.escalations import EscalationRepo

RULE = "R7"
PERIOD = "once"
# Float sums on SQLite: keep every contract a cent or more short (typed, or PostgreSQL casts it to the
# column's NUMERIC(14, 2) and rounds it to a whole cent).
SQL_SLACK = literal(Decimal("0.005"), Numeric(12, 3))

TITLE = "回款逾期工单：{customer}"
DESC = "签约 {days} 天仍有 {unpaid} 未回款"
TEXT = ("财务核对到账与开票，销售联系客户确认付款时间，交付确认验收或交付卡点。"
        "{owner}本月（{month}）超额奖金已冻结，全部回款后自动解冻。")
COPY = "📄 回款逾期工单：{customer} 合同 {contract} 签约 {days} 天仍有 {unpaid} 未回款，请财务、销售、交付一起跟进。"
FREEZE_REASON = "R7 回款逾期：合同 {contract}（{customer}）签约 {days} 天仍有 {unpaid} 未回款"


async def run(deps: Deps, now: datetime) -> int:
    """R7: work orders (+ bonus freezes) for contracts newly overdue; releases freezes now paid in full."""
    await release_paid(deps, now)
    settings = deps.settings
    days = settings.rules.receivable_days
    cutoff = now - timedelta(days=days)
    calendar = calendar_of(settings)
    paid_sql = (select(func.coalesce(func.sum(Payment.amount), 0))
                .where(Payment.contract_id == Contract.id).scalar_subquery())
    fired, after = 0, 0
    while True:
        async with deps.db.transaction() as s:
            contracts = (await s.scalars(
                select(Contract)
                .where(signed_sql(), Contract.signed_at < cutoff, Contract.id > after,
                       paid_sql < Contract.amount - SQL_SLACK,
                       not_fired(RULE, "contract", Contract.id, literal(PERIOD)))
                .order_by(Contract.id)
                .limit(BATCH)
            )).all()
            if contracts:
                after = contracts[-1].id
            payments = await _payments(s, [c.id for c in contracts])
            finance = await _active(s, settings.org.finance)
            delivery = await _active(s, settings.org.delivery)
            repo = EscalationRepo(s)
            for contract in contracts:
                paid = payments[contract.id]
                if not is_overdue(contract, contract.amount, paid, now, days):
                    continue
                owner = await s.get(User, contract.owner_id)
                customer = await s.get(Customer, contract.customer_id)
                recipients = list(dict.fromkeys([*finance, *await userids(s, [contract.owner_id]), *delivery]))
                groups = recipient_groups(recipients)
                unpaid = outstanding(contract.amount, paid)
                month = freeze_month(now)
                facts = {
                    "customer": customer.name if customer is not None else f"客户#{contract.customer_id}",
                    "contract": contract.external_id or f"#{contract.id}",
                    "days": (now - contract.signed_at).days if contract.signed_at is not None else days,
                    "unpaid": money(unpaid),
                }
                task = task_id(RULE, contract.id, PERIOD)
                esc = await repo.fire(RULE, "contract", contract.id, PERIOD, now, recipients=recipients, task_id=task,
                                      data={"unpaid": str(unpaid), "month": month,
                                            "card_to": groups[0].split("|") if groups else []})
                if esc is None:
                    continue
                s.add(BonusFreeze(user_id=contract.owner_id, contract_id=contract.id, month=month,
                                  reason=FREEZE_REASON.format(**facts), created_at=now))
                send_card(repo, esc, groups, card=_card(contract, facts, paid, owner, month, task),
                          copy=COPY.format(**facts), now=now, calendar=calendar)
                fired += 1
        if len(contracts) < BATCH:
            return fired


async def release_paid(deps: Deps, now: datetime) -> int:
    """Release the R7 freezes whose contract is now paid in full (released_by stays empty: the money did it)."""
    released, after = 0, 0
    while True:
        async with deps.db.transaction() as s:
            stmt = (select(BonusFreeze).where(BonusFreeze.released_at.is_(None), BonusFreeze.id > after)
                    .order_by(BonusFreeze.id).limit(BATCH))
            if deps.db.engine.dialect.name == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            freezes = (await s.scalars(stmt)).all()
            if freezes:
                after = freezes[-1].id
            ids = list({f.contract_id for f in freezes})
            payments = await _payments(s, ids)
            rows = await s.execute(select(Contract.id, Contract.amount).where(Contract.id.in_(ids)))
            amounts = {contract_id: amount for contract_id, amount in rows.all()}
            for freeze in freezes:
                amount = amounts.get(freeze.contract_id)
                if amount is not None and outstanding(amount, payments[freeze.contract_id]) == 0:
                    freeze.released_at = now
                    released += 1
        if len(freezes) < BATCH:
            return released


async def _payments(s: AsyncSession, contract_ids: Sequence[int]) -> defaultdict[int, list[Decimal]]:
    out: defaultdict[int, list[Decimal]] = defaultdict(list)
    if contract_ids:
        rows = await s.execute(select(Payment.contract_id, Payment.amount).where(Payment.contract_id.in_(contract_ids)))
        for contract_id, amount in rows.all():
            out[contract_id].append(amount)
    return out


async def _active(s: AsyncSession, wecom_userids: Sequence[str]) -> list[str]:
    """The configured userids that are active users, in the configured order."""
    if not wecom_userids:
        return []
    found = set((await s.scalars(select(User.wecom_userid).where(
        User.wecom_userid.in_(wecom_userids), User.active.is_(True)))).all())
    return [u for u in dict.fromkeys(wecom_userids) if u in found]


def _card(contract: Contract, facts: dict[str, Any], paid: list[Decimal], owner: User | None, month: str,
          task: str) -> dict[str, Any]:
    owner_name = owner.name if owner is not None else "负责人"
    signed = contract.signed_at.astimezone(SHANGHAI).strftime("%Y-%m-%d") if contract.signed_at else "-"
    return work_card(
        rule=RULE, task=task,
        title=TITLE.format(**facts), desc=DESC.format(**facts),
        rows=[("合同", str(facts["contract"])), ("金额", money(contract.amount)),
              ("已回款", money(sum(paid, Decimal(0)))), ("未回款", str(facts["unpaid"])),
              ("签约日", signed), ("负责人", owner_name)],
        text=TEXT.format(owner=owner_name, month=month),
    )
