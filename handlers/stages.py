"""R6 stage moves: "华远 进入 报价" moves an opportunity only when the target stage's gate is met;
otherwise the reply lists exactly what is missing. "强制推进 华远 报价 原因：…" lets a manager override,
with the reason, the missing key actions and who did it in the audit log. Every move restarts
stage_entered_at and last_progress_at (R4, R5) and is kept as a StageMove (R12)."""

from __future__ import annotations

from typing import Any

from bot.channels.base import Reply, Text
from bot.dispatch.context import Context
from bot.dispatch.filters import MsgType
from bot.dispatch.router import HelpEntry, Router
from bot.nlu.intents import Intent, Parsed
from bot.nlu.text import clean, tidy
from bot.rules.gates import next_stage
from handlers.common import (
    Answering,
    IntentIs,
    chosen_customer,
    customer_step,
    message_text,
    not_found_text,
    question_for,
    too_long,
)
from handlers.gating import missing_for, missing_lines
from store.models import Customer, Opportunity

FLOW = "stage"
NO_OPPORTUNITY = "「{customer}」目前没有进行中的商机。"
NOT_YOURS = "「{customer}」的商机由{owner}负责，只有负责人或主管可以推进。"
ALREADY = "「{name}」已经在「{stage}」阶段了。"
LAST_STAGE = "「{name}」已经在最后一个阶段「{stage}」了。"
BLOCKED = ("⛔ 「{name}」还不能进入「{target}」，还差：\n{lines}\n"
           "把附件（图片/文件）发给我并选择对应动作，负责人再发「确认 动作名称」即可。")
MOVED = "✅ 已推进：「{name}」{old} → {new}"
MOVED_BACK = "↩️ 已调整：「{name}」{old} → {new}"
FORCED = "⚠️ 已强制推进：「{name}」{old} → {new}\n原因：{reason}\n（未满足：{missing}，已记入审计日志）"
FORCED_OWNER = "⚠️ {actor}把你的商机「{name}」强制推进到「{new}」。原因：{reason}"
FORCE_NOT_ALLOWED = ("只有负责人的主管（直属上级、团队或区域主管）可以强制推进。需要推进的话，先补齐关键动作，"
                     "或请主管发「强制推进 客户 阶段 原因：…」。")
ASK_REASON = "强制推进需要写明原因，请回复原因（会记入审计日志）："
NOTHING_MISSING = "无"

router = Router(name=FLOW, help=(
    HelpEntry("推进商机阶段（满足关键动作才放行）", "华远 进入 报价"),
    HelpEntry("主管强制推进（需写原因，留审计）", "强制推进 华远 报价 原因：客户老板已口头拍板"),
))
# Answers to this flow's own questions: tried before every intent (see handlers/__init__.py).
answers = Router(name="stages-answers")


class Step:
    CUSTOMER = "customer"
    REASON = "reason"


@router.handle(IntentIs(Intent.STAGE_MOVE))
async def move(ctx: Context, parsed: Parsed) -> Reply:
    """R6: a move the gate allows, or the exact list of what is missing."""
    data: dict[str, Any] = {"target": parsed.stage, "forced": False}
    return await _start(ctx, parsed, data)


@router.handle(IntentIs(Intent.FORCE_MOVE))
async def force(ctx: Context, parsed: Parsed) -> Reply:
    """R6: a manager's override, with a reason; audited."""
    assert ctx.user is not None
    if "manager" not in (ctx.user.roles or []) and not _sales_ops(ctx):
        return Text(FORCE_NOT_ALLOWED)
    if parsed.reason and (refused := too_long(ctx, parsed.reason)) is not None:
        return refused
    data: dict[str, Any] = {"target": parsed.stage, "forced": True, "reason": parsed.reason}
    return await _start(ctx, parsed, data)


@answers.handle(MsgType("text", "voice"), Answering(FLOW, Step.CUSTOMER))
async def answer_customer_step(ctx: Context) -> Reply:
    data, picked = await customer_step(ctx, FLOW, Step.CUSTOMER)
    if not isinstance(picked, Customer):
        return picked
    ctx.state.clear()
    return await _move(ctx, picked, data)


@answers.handle(MsgType("text", "voice"), Answering(FLOW, Step.REASON))
async def answer_reason(ctx: Context) -> Reply:
    data = dict(ctx.state.data)
    reason = tidy(clean(message_text(ctx) or ""))
    if (refused := too_long(ctx, reason)) is not None:
        return refused
    if len(reason) < 2:
        return Text(ASK_REASON)
    data["reason"] = reason
    customer = await ctx.repos.customers.get(int(data["customer_id"]))
    ctx.state.clear()
    if customer is None:
        return Text(not_found_text(""))
    return await _move(ctx, customer, data)


def _sales_ops(ctx: Context) -> bool:
    """Sales ops ([org] sales_ops) administer every team's funnel."""
    return ctx.user is not None and ctx.user.wecom_userid in ctx.settings.org.sales_ops


async def _start(ctx: Context, parsed: Parsed, data: dict[str, Any]) -> Reply:
    ctx.state.clear()
    customer = await chosen_customer(ctx, parsed.customer)
    if customer is None:
        question, ids = await question_for(ctx, parsed.customer)
        ctx.state.set(FLOW, Step.CUSTOMER, **data, candidates=ids)
        return Text(question)
    return await _move(ctx, customer, data)


async def _opportunity(ctx: Context, customer: Customer) -> Opportunity | None:
    assert ctx.user is not None
    opps = await ctx.repos.pipeline.open_for_customer(customer.id)
    own = [o for o in opps if o.owner_id == ctx.user.id]
    found = own or opps
    return found[0] if found else None


async def _move(ctx: Context, customer: Customer, data: dict[str, Any]) -> Reply:
    assert ctx.user is not None
    opp = await _opportunity(ctx, customer)
    if opp is None:
        return Text(NO_OPPORTUNITY.format(customer=customer.name))
    leads = _sales_ops(ctx) or await ctx.repos.users.leads(ctx.user, opp.owner_id)
    if opp.owner_id != ctx.user.id and not leads:
        owner = await ctx.repos.users.get(opp.owner_id)
        return Text(NOT_YOURS.format(customer=customer.name, owner=owner.name if owner else "其他同事"))
    stages = ctx.settings.funnel.stages
    target = data.get("target") or next_stage(stages, opp.stage)
    if target is None:
        return Text(LAST_STAGE.format(name=customer.name, stage=opp.stage))
    if target == opp.stage:
        return Text(ALREADY.format(name=customer.name, stage=opp.stage))
    missing = await missing_for(ctx, opp, target)
    old = opp.stage
    backward = target in stages and old in stages and stages.index(target) < stages.index(old)
    if data.get("forced"):
        if not leads:
            return Text(FORCE_NOT_ALLOWED)
        if not data.get("reason"):
            ctx.state.set(FLOW, Step.REASON, **data, customer_id=customer.id)
            return Text(ASK_REASON)
        return await _forced(ctx, customer, opp, target, missing, data["reason"])
    if missing and not backward:
        return Text(BLOCKED.format(name=customer.name, target=target, lines="\n".join(missing_lines(missing))))
    move = await ctx.repos.pipeline.move(opp, target, actor_id=ctx.user.id, now=ctx.now, forced=False, reason=None,
                                         source_ref=ctx.source_ref)
    if backward or opp.owner_id != ctx.user.id:
        # A move back restarts the stage clock (R4, R5) and a manager's move is someone else's deal: audited.
        await ctx.repos.pipeline.audit(
            at=ctx.now, actor_id=ctx.user.id, action="stage.back" if backward else "stage.move_for_owner",
            subject_type="opportunity", subject_id=opp.id,
            detail={"from": old, "to": target, "owner_id": opp.owner_id, "stage_move_id": move.id},
        )
    return Text((MOVED_BACK if backward else MOVED).format(name=customer.name, old=old, new=target))


async def _forced(ctx: Context, customer: Customer, opp: Opportunity, target: str, missing: list[Any],
                  reason: str) -> Reply:
    """R6: the override is a StageMove marked forced plus an audit row naming what was skipped."""
    assert ctx.user is not None
    old = opp.stage
    move = await ctx.repos.pipeline.move(opp, target, actor_id=ctx.user.id, now=ctx.now, forced=True, reason=reason,
                                         source_ref=ctx.source_ref)
    skipped = [{"stage": m.stage, "key_action": m.name, "needs_attachment": m.needs_attachment,
                "needs_signoff": m.needs_signoff} for m in missing]
    await ctx.repos.pipeline.audit(
        at=ctx.now, actor_id=ctx.user.id, action="stage.force", subject_type="opportunity", subject_id=opp.id,
        detail={"from": old, "to": target, "reason": reason, "missing": skipped, "stage_move_id": move.id},
    )
    if opp.owner_id != ctx.user.id:
        owner = await ctx.repos.users.get(opp.owner_id)
        if owner is not None and owner.active and owner.wecom_userid:
            ctx.send(owner.wecom_userid, Text(FORCED_OWNER.format(actor=ctx.user.name, name=customer.name,
                                                                  new=target, reason=reason)))
    names = "、".join(m.name for m in missing) or NOTHING_MISSING
    return Text(FORCED.format(name=customer.name, old=old, new=target, reason=reason, missing=names))
