"""R6 through the real wire: attachments + sign-off open a stage gate; a manager's forced move is audited;
我的商机 shows what each next gate needs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.clock import SettableClock
from store.models import Attachment, AuditLog, KeyAction, Opportunity, StageMove
from tests.flows.test_checkin import said
from tests.harness import running_bot, seed_customers, seed_team


async def opportunity(bot: Any, customer_id: int) -> Opportunity:
    async with bot.deps.db.sessions() as s:
        return (await s.scalars(select(Opportunity).where(Opportunity.customer_id == customer_id))).one()


async def test_gate_blocks_then_passes_after_attachments_and_sign_off(db_url: str, db: Any,
                                                                     clock: SettableClock) -> None:
    """R6: 报价 (= 方案呈现) needs 需求调研报告 and 客户签字页, each attached and confirmed by the owner."""
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        bot.fake.add_media("MEDIA_REPORT", b"%PDF-1.7 report", "application/pdf")
        bot.fake.add_media("MEDIA_SIGNATURE", b"\xff\xd8\xff signature", "image/jpeg")
        blocked = await said(bot, "zhangsan", "华远 进入 报价")
        assert "还不能进入「方案呈现」" in blocked
        assert "需求调研报告（缺附件、缺负责人确认）" in blocked and "客户签字页（缺附件、缺负责人确认）" in blocked

        await bot.send(bot.wire.image("zhangsan", "MEDIA_REPORT"))
        await bot.settle()
        question = bot.fake.delivered("zhangsan")[-1].content or ""
        assert "哪个关键动作" in question and "需求调研报告" in question
        assert "已作为「上海华远科技有限公司·需求调研报告」的附件" in await said(bot, "zhangsan", "华远 需求调研报告")

        await bot.send(bot.wire.image("zhangsan", "MEDIA_SIGNATURE"))
        await bot.settle()
        assert "客户签字页」的附件" in await said(bot, "zhangsan", "客户签字页")

        still = await said(bot, "zhangsan", "华远科技 进入 方案呈现")
        assert "还差" in still and "需求调研报告（缺负责人确认）" in still and "缺附件" not in still
        # Only the owner signs off: 李四's own opportunity has no such attachment, 张三's is not his.
        assert "「需求调研报告」还没有附件" in await said(bot, "lisi", "确认 需求调研报告")

        confirmed = await said(bot, "zhangsan", "确认 需求调研报告")
        assert "已确认「上海华远科技有限公司·需求调研报告」" in confirmed and "客户签字页" in confirmed
        ready = await said(bot, "zhangsan", "确认 客户签字页")
        assert "条件已齐" in ready
        moved = await said(bot, "zhangsan", "华远 进入 报价")
        assert "已推进" in moved and "需求诊断 → 方案呈现" in moved

        opp = await opportunity(bot, customers["huayuan"])
        assert opp.stage == "方案呈现" and opp.stage_entered_at == clock.now() and opp.last_progress_at == clock.now()
        async with bot.deps.db.sessions() as s:
            actions = {k.name: k for k in (await s.scalars(select(KeyAction))).all()}
            assert actions["需求调研报告"].signed_off_by == ids["zhangsan"]
            assert actions["需求调研报告"].attachment_media_id == "MEDIA_REPORT"
            attachments = (await s.scalars(select(Attachment).order_by(Attachment.id))).all()
            assert [a.key_action_id for a in attachments] == [actions["需求调研报告"].id, actions["客户签字页"].id]
            [move] = (await s.scalars(select(StageMove))).all()
        assert (move.from_stage, move.to_stage, move.forced, move.actor_id) == ("需求诊断", "方案呈现", False,
                                                                                 ids["zhangsan"])


async def test_forced_move_is_manager_only_needs_a_reason_and_is_audited(db_url: str, db: Any,
                                                                        clock: SettableClock) -> None:
    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "只有负责人的主管" in await said(bot, "zhangsan", "强制推进 宏达 签约 原因：老板拍板")
        assert "需要写明原因" in await said(bot, "wangjl", "强制推进 宏达零售 签约")
        forced = await said(bot, "wangjl", "客户老板已口头拍板，合同下周走流程")
        assert "已强制推进" in forced and "触达 → 签约" in forced and "竞品分析提交" in forced
        assert any("强制推进到「签约」" in (m.content or "") for m in bot.fake.delivered("zhangsan"))
        opp = await opportunity(bot, customers["hongda"])
        assert opp.stage == "签约"
        async with bot.deps.db.sessions() as s:
            [audit] = (await s.scalars(select(AuditLog).where(AuditLog.action == "stage.force"))).all()
            [move] = (await s.scalars(select(StageMove))).all()
        assert audit.actor_id == ids["wangjl"] and audit.subject_id == opp.id
        assert audit.detail["reason"] == "客户老板已口头拍板，合同下周走流程"
        assert {m["key_action"] for m in audit.detail["missing"]} >= {"首次需求确认", "需求调研报告", "客户签字页"}
        assert move.forced and move.reason == audit.detail["reason"]


async def test_my_pipeline_lists_stage_days_and_next_gate(db_url: str, db: Any, clock: SettableClock) -> None:
    from datetime import timedelta

    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        clock.advance(timedelta(days=4, hours=1))
        reply = await said(bot, "zhangsan", "我的商机")
        assert "上海华远科技有限公司" in reply and "宏达零售" in reply and "华远物流" not in reply
        assert "需求诊断｜已 4 天" in reply and "「方案呈现」还差：需求调研报告、客户签字页" in reply
        assert "没有进行中的商机" in await said(bot, "wangjl", "我的商机")


async def test_an_attachment_that_cannot_be_fetched_does_not_complete_its_key_action(
    db_url: str, db: Any, clock: SettableClock
) -> None:
    """R6: media that expires before it could be fetched un-attaches its key action and the rep is told;
    the gate stays shut. Media already gone when the rep picks the action is refused at once. A stored
    one fills the key action's path."""
    from datetime import timedelta

    from bot.devtools.fake_wecom import Fault

    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        bot.fake.add_media("MEDIA_LATE", b"\xff\xd8\xff late image", "image/jpeg")
        bot.fake.script("media/get", [Fault.HTTP_502])  # the first download fails: retried later
        await bot.send(bot.wire.image("zhangsan", "MEDIA_LATE"))
        await bot.settle()
        assert "已作为「上海华远科技有限公司·需求调研报告」的附件" in await said(bot, "zhangsan", "华远 需求调研报告")
        # Picked but not stored: the gate does not open on a file it does not have.
        assert "需求调研报告（附件下载中、缺负责人确认）" in await said(bot, "zhangsan", "华远 进入 报价")
        clock.advance(timedelta(days=3, minutes=1))  # past WeCom's 3 days before the retry succeeded
        await bot.settle()
        assert "没能从企业微信取到" in (bot.fake.delivered("zhangsan")[-1].content or "")

        await bot.send(bot.wire.image("zhangsan", "MEDIA_GONE"))  # the fake never had it: 40007 at once
        await bot.settle()
        assert "取不到了" in await said(bot, "zhangsan", "华远 需求调研报告")

        bot.fake.add_media("MEDIA_OK", b"\xff\xd8\xff ok image", "image/jpeg")
        await bot.send(bot.wire.image("zhangsan", "MEDIA_OK"))
        await bot.settle()
        await said(bot, "zhangsan", "华远 客户签字页")
        async with bot.deps.db.sessions() as s:
            actions = {k.name: k for k in (await s.scalars(select(KeyAction))).all()}
            statuses = {a.media_id: a.status for a in (await s.scalars(select(Attachment))).all()}
        assert statuses == {"MEDIA_LATE": "expired", "MEDIA_GONE": "expired", "MEDIA_OK": "stored"}
        assert actions["需求调研报告"].attached_at is None and actions["需求调研报告"].attachment_media_id is None
        assert actions["客户签字页"].attachment_path and actions["客户签字页"].attached_at is not None
        assert "需求调研报告（缺附件、缺负责人确认）" in await said(bot, "zhangsan", "华远 进入 报价")


async def test_ambiguous_customer_then_not_yours_and_restart_mid_force(db_url: str, db: Any,
                                                                      clock: SettableClock) -> None:
    """Candidates are offered for an ambiguous name; only the owner (or a manager) moves a deal; the
    manager's pending forced move survives a restart and completes with the reason."""
    from store.models import Customer

    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with db.transaction() as s:
        s.add(Customer(name="宏达超市", owner_id=ids["wangjl"], created_at=clock.now()))
    async with running_bot(db_url, clock, run_sender=False) as bot:
        question = await said(bot, "lisi", "宏达 进入 需求诊断")
        assert "宏达零售" in question and "宏达超市" in question
        number = "1" if question.index("宏达零售") < question.index("宏达超市") else "2"
        assert "由张三负责" in await said(bot, "lisi", number)
        assert "需要写明原因" in await said(bot, "wangjl", "强制推进 宏达零售 需求诊断")
    async with running_bot(db_url, clock, run_sender=False) as bot:  # a new process
        assert "已强制推进" in await said(bot, "wangjl", "客户已确认需求，补材料中")
        assert (await opportunity(bot, customers["hongda"])).stage == "需求诊断"


async def test_a_new_file_after_sign_off_needs_a_new_confirmation(db_url: str, db: Any, clock: SettableClock) -> None:
    """R6: the owner signs what is attached; attaching another file withdraws the sign-off."""
    ids = await seed_team(db, clock)
    await seed_customers(db, clock, ids)
    async with running_bot(db_url, clock, run_sender=False) as bot:
        for media in ("MEDIA_A", "MEDIA_B"):
            bot.fake.add_media(media, b"\xff\xd8\xff " + media.encode(), "image/jpeg")
        await bot.send(bot.wire.image("zhangsan", "MEDIA_A"))
        await bot.settle()
        await said(bot, "zhangsan", "华远 需求调研报告")
        assert "已确认" in await said(bot, "zhangsan", "确认 需求调研报告")
        await bot.send(bot.wire.image("zhangsan", "MEDIA_B"))
        await bot.settle()
        await said(bot, "zhangsan", "华远 需求调研报告")
        assert "需求调研报告（缺负责人确认）" in await said(bot, "zhangsan", "华远 进入 报价")
        assert "已确认" in await said(bot, "zhangsan", "确认 需求调研报告")


async def test_only_the_owners_managers_force_and_moves_back_are_audited(db_url: str, db: Any,
                                                                         clock: SettableClock) -> None:
    """R6: a manager of another team cannot force a deal; the owner may move back, and it is audited."""
    from store.models import OrgUnit, User

    ids = await seed_team(db, clock)
    customers = await seed_customers(db, clock, ids)
    async with db.transaction() as s:
        other = OrgUnit(kind="team", name="北京一组", created_at=clock.now())
        s.add(other)
        await s.flush()
        boss = User(name="赵经理", wecom_userid="zhaojl", roles=["manager"], team_id=other.id, created_at=clock.now())
        s.add(boss)
        await s.flush()
        other.manager_id = boss.id
    async with running_bot(db_url, clock, run_sender=False) as bot:
        assert "由张三负责" in await said(bot, "zhaojl", "强制推进 宏达零售 签约 原因：我说了算")
        assert "已调整" in await said(bot, "zhangsan", "华远 进入 触达")
        assert (await opportunity(bot, customers["huayuan"])).stage == "触达"
        async with bot.deps.db.sessions() as s:
            [audit] = (await s.scalars(select(AuditLog))).all()
        assert audit.action == "stage.back" and audit.detail["from"] == "需求诊断" and audit.actor_id == ids["zhangsan"]
        assert (await opportunity(bot, customers["hongda"])).stage == "触达"
