"""R7 overdue receivable through the real app and fake WeCom: one tri-party work-order card to finance, the
owner and delivery (one message), once per contract, with the owner's excess bonus frozen for the month;
paid in full later → the freeze is released and nothing more is sent. R10: a contract without legal
approval (or not signed) never fires."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from bot.clock import SettableClock
from store.db import Database
from store.models import BonusFreeze, Contract, Customer, Escalation, Notice, Payment, User
from tests.harness import running_bot, seed_team

ORG = {"org": {"finance": ("caiwu",), "delivery": ("jiaofu",)}}
PARTIES = ("caiwu", "zhangsan", "jiaofu")
OTHERS = ("wangjl", "lisi")


def _bot(db_url: str, clock: SettableClock, **kw: Any) -> Any:
    return running_bot(db_url, clock, run_sender=False, overrides=ORG, **kw)


async def r7(bot: Any) -> int:
    """The R7 sweep, then the notices it made (other rules' sweeps have their own tests)."""
    fired = int(await bot.run_job("r7-receivables"))
    await bot.run_job("notices")
    return fired


def r7_cards(bot: Any, userid: str) -> list[dict[str, Any]]:
    """The R7 work-order cards one person received (the stand-up prompt and other rules are not counted)."""
    cards = [m.body.get("template_card") or {} for m in bot.fake.delivered(userid)]
    return [c for c in cards if str(c.get("task_id", "")).startswith("r7-")]


async def seed(db: Database, clock: SettableClock, *, days_ago: timedelta, amount: str = "100000.00",
               paid: tuple[str, ...] = ("40000.00",), status: str = "signed", legal: bool = True) -> int:
    """张三's contract with 华远, signed `days_ago` before now, partly paid; finance 小刘, delivery 老赵."""
    ids = await seed_team(db, clock)
    now = clock.now()
    signed = now - days_ago
    async with db.transaction() as s:
        customer = Customer(name="上海华远科技有限公司", owner_id=ids["zhangsan"], industry="IT服务", created_at=now)
        s.add(customer)
        await s.flush()
        s.add(User(name="财务小刘", wecom_userid="caiwu", roles=["finance"], created_at=now))
        s.add(User(name="交付老赵", wecom_userid="jiaofu", roles=["delivery"], created_at=now))
        contract = Contract(customer_id=customer.id, owner_id=ids["zhangsan"], amount=Decimal(amount),
                            status=status, legal_approved_at=signed - timedelta(days=1) if legal else None,
                            signed_at=signed, external_id="HT-2026-017", created_at=now)
        s.add(contract)
        await s.flush()
        for value in paid:
            s.add(Payment(contract_id=contract.id, amount=Decimal(value), received_at=signed, created_at=now))
    return contract.id


async def freezes(db: Database) -> list[BonusFreeze]:
    async with db.sessions() as s:
        return list((await s.scalars(select(BonusFreeze).order_by(BonusFreeze.id))).all())


async def test_r7_one_card_to_finance_owner_and_delivery_once_then_released_when_paid(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """R7: at 60 days minus a minute nothing; just past 60 days one card reaching the three parties as one
    message, the bonus frozen; rerun nothing; paid in full → released, nothing more."""
    contract_id = await seed(db, clock, days_ago=timedelta(days=60) - timedelta(minutes=2))
    async with _bot(db_url, clock) as bot:
        clock.advance(timedelta(minutes=1))
        assert await r7(bot) == 0
        await bot.run_job("sweeps")
        assert all(r7_cards(bot, u) == [] for u in PARTIES) and await freezes(db) == []

        clock.advance(timedelta(minutes=2))
        assert await bot.run_job("sweeps") >= 1
        for userid in PARTIES:
            [card] = r7_cards(bot, userid)
            assert card["main_title"]["title"] == "回款逾期工单：上海华远科技有限公司"
        assert all(r7_cards(bot, u) == [] for u in OTHERS)
        sent = [m for u in PARTIES for m in bot.fake.delivered(u) if m.msgtype == "template_card"]
        assert len(sent) == 3 and len({m.msgid for m in sent}) == 1  # one message/send to "caiwu|zhangsan|jiaofu"
        card = sent[0].body["template_card"]
        assert card["card_type"] == "button_interaction" and card["task_id"].startswith(f"r7-{contract_id}-")
        rows = {row["keyname"]: row["value"] for row in card["horizontal_content_list"]}
        assert rows["未回款"] == "¥60,000.00" and rows["已回款"] == "¥40,000.00" and rows["负责人"] == "张三"
        assert [b["key"] for b in card["button_list"]] == ["r7:done"]
        [freeze] = await freezes(db)
        assert (freeze.contract_id, freeze.month, freeze.released_at) == (contract_id, "2026-11", None)
        async with db.sessions() as s:
            owner = await s.scalar(select(User.id).where(User.wecom_userid == "zhangsan"))
            [esc] = (await s.scalars(select(Escalation).where(Escalation.rule == "R7"))).all()
        assert freeze.user_id == owner and "¥60,000.00" in freeze.reason
        assert esc.recipients == list(PARTIES) and esc.task_id == card["task_id"]

        clock.advance(timedelta(hours=1))
        assert await r7(bot) == 0  # rerun: nothing twice
        await bot.run_job("sweeps")
        assert all(len(r7_cards(bot, u)) == 1 for u in PARTIES)

        async with db.transaction() as s:  # the rest arrives
            s.add(Payment(contract_id=contract_id, amount=Decimal("60000.00"), received_at=clock.now(),
                          created_at=clock.now()))
        clock.advance(timedelta(days=40))  # another month: still nothing (fired once per contract)
        assert await r7(bot) == 0
        await bot.run_job("sweeps")
        assert all(len(r7_cards(bot, u)) == 1 for u in PARTIES)
        assert all(len(bot.fake.delivered(u)) == 1 for u in ("caiwu", "jiaofu"))
        [freeze] = await freezes(db)
        assert freeze.released_at == clock.now() and freeze.released_by is None


async def test_r10_a_contract_without_legal_approval_never_fires(db_url: str, db: Database,
                                                                 clock: SettableClock) -> None:
    """R10: signed but not through legal — unpaid for 90 days, still not a receivable anywhere."""
    await seed(db, clock, days_ago=timedelta(days=90), legal=False)
    async with _bot(db_url, clock) as bot:
        assert await r7(bot) == 0
        await bot.run_job("sweeps")
        assert all(r7_cards(bot, u) == [] for u in PARTIES)
    assert await freezes(db) == []


async def test_a_draft_contract_never_fires(db_url: str, db: Database, clock: SettableClock) -> None:
    await seed(db, clock, days_ago=timedelta(days=90), status="draft")
    async with _bot(db_url, clock) as bot:
        assert await bot.run_job("r7-receivables") == 0


async def test_money_is_summed_in_decimal(db_url: str, db: Database, clock: SettableClock) -> None:
    """0.10 + 0.20 pays 0.30 (a float sum would leave it unpaid on SQLite); one cent short is unpaid."""
    await seed(db, clock, days_ago=timedelta(days=61), amount="0.30", paid=("0.10", "0.20"))
    async with _bot(db_url, clock) as bot:
        assert await r7(bot) == 0
        async with db.transaction() as s:
            contract = (await s.scalars(select(Contract))).one()
            contract.amount = Decimal("100.00")
            s.add(Payment(contract_id=contract.id, amount=Decimal("99.69"), received_at=clock.now(),
                          created_at=clock.now()))
        assert await r7(bot) == 1
        assert "¥0.01" in bot.fake.delivered("caiwu")[0].body["template_card"]["main_title"]["desc"]


async def test_recipients_that_do_not_fit_one_send_get_a_text_copy(db_url: str, db: Database,
                                                                   clock: SettableClock) -> None:
    """outbox.recipient holds 64 characters: the card goes to as many parties as fit, the rest get a text."""
    long_finance = "finance_" + "x" * 56
    await seed(db, clock, days_ago=timedelta(days=61))
    async with db.transaction() as s:
        s.add(User(name="财务总监", wecom_userid=long_finance, roles=["finance"], created_at=clock.now()))
    overrides = {"org": {"finance": ("caiwu", long_finance), "delivery": ("jiaofu",)}}
    async with running_bot(db_url, clock, run_sender=False, overrides=overrides) as bot:
        assert await r7(bot) == 1
        for userid in PARTIES:
            assert [c["main_title"]["title"] for c in r7_cards(bot, userid)] == ["回款逾期工单：上海华远科技有限公司"]
        [copy] = bot.texts(long_finance)
        assert copy.startswith("📄 回款逾期工单：上海华远科技有限公司 合同 HT-2026-017 "
                               "签约 61 天仍有 ¥60,000.00 未回款")
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Notice)) == 2


async def test_r7_card_press_is_recorded_and_updates_the_card_for_all_three(
    db_url: str, db: Database, clock: SettableClock
) -> None:
    """Finance presses 已处理: recorded (and audited), the card updated for finance, owner and delivery with this
    press's code; the owner pressing afterwards records nothing and sees who handled it."""
    from store.models import AuditLog
    from tests.conftest import AGENT_ID

    await seed(db, clock, days_ago=timedelta(days=61))
    async with _bot(db_url, clock) as bot:
        assert await r7(bot) == 1
        [card] = r7_cards(bot, "caiwu")
        code = bot.fake.issue_response_code(list(PARTIES))
        clock.advance(timedelta(seconds=5))
        assert (await bot.send(bot.wire.card_event("caiwu", card["task_id"], "r7:done", code))).status == 200
        await bot.settle()
        assert bot.fake.card_updates == [{"userids": list(PARTIES), "agentid": AGENT_ID, "response_code": code,
                                          "button": {"replace_name": "已处理 · 财务小刘"}}]
        async with db.sessions() as s:
            [esc] = (await s.scalars(select(Escalation).where(Escalation.rule == "R7"))).all()
            finance = await s.scalar(select(User.id).where(User.wecom_userid == "caiwu"))
            [audit] = (await s.scalars(select(AuditLog))).all()
        assert (esc.action, esc.acted_by, esc.status, esc.acted_at) == ("done", finance, "done", clock.now())
        assert (audit.action, audit.actor_id, audit.subject_id) == ("r7.done", finance, esc.id)

        second = bot.fake.issue_response_code(["zhangsan"])
        clock.advance(timedelta(seconds=5))
        await bot.send(bot.wire.card_event("zhangsan", card["task_id"], "r7:done", second))
        await bot.settle()
        assert bot.fake.card_updates[1]["button"] == {"replace_name": "已处理 · 财务小刘"}
        assert bot.fake.card_updates[1]["userids"] == ["zhangsan"]
        clock.advance(timedelta(seconds=5))
        await bot.send(bot.wire.card_event("lisi", card["task_id"], "r7:done", bot.fake.issue_response_code(["lisi"])))
        await bot.settle()
        assert bot.texts("lisi")[-1] == "这张任务卡片不是发给你的，操作没有记录。"


async def test_r7_two_sweeps_at_once_one_card_one_freeze(db_url: str, db: Database, clock: SettableClock) -> None:
    """Two app instances on one database run R7 concurrently (PostgreSQL: two connections): once."""
    import asyncio

    from jobs.registry import registry

    await seed(db, clock, days_ago=timedelta(days=61))
    async with _bot(db_url, clock) as one, _bot(db_url, clock, fake=one.fake) as two:
        job = registry()["r7-receivables"]
        counts = await asyncio.gather(job(one.deps, clock.now()), job(two.deps, clock.now()),
                                      job(one.deps, clock.now()), job(two.deps, clock.now()))
        assert sum(counts) == 1
        await asyncio.gather(one.run_job("notices"), two.run_job("notices"))
        assert all(len(r7_cards(one, u)) == 1 for u in PARTIES)
    assert len(await freezes(db)) == 1


def test_card_recipients_fit_the_outbox_column() -> None:
    from jobs.sweeps.periodic import recipient_groups, task_id

    assert recipient_groups(["caiwu", "zhangsan", "jiaofu", "zhangsan"]) == ["caiwu|zhangsan|jiaofu"]
    long = "x" * 60
    assert recipient_groups(["caiwu", long, "zhangsan"]) == ["caiwu|zhangsan", long]
    tid = task_id("R2", 7, "2026-12-01")
    assert tid.startswith("r2-7-2026-12-01-") and len(tid) <= 128
    assert task_id("R2", 7, "2026-12-01") != tid  # unique for ever in the app (42014 otherwise)
