"""The one-button task cards of the measure sweeps — R2 电话复盘, R7 回款逾期工单, R12 专项陪访: a press (WeCom
`template_card_event`, EventKey "r7:done") records who handled it and updates the card for everyone who got
it (one message to "a|b|c", so one update with this press's ResponseCode reaches all of them).

A press after someone already handled it changes nothing and shows the presser who did; an unknown card or a
person the card was not sent to gets a plain answer. (R4's three-button cards are handlers/cards.py.)
"""

from __future__ import annotations

from bot.channels.base import Reply, Text, UpdateCard
from bot.dispatch.context import Context
from bot.dispatch.router import Router
from store.models import Escalation
from store.repos.escalations import EscalationRepo

# Rule -> its card's button label; the button's key is "<rule in lower case>:done" (jobs/sweeps/periodic.py).
WORK_ORDER_BUTTONS: dict[str, str] = {"R2": "已复盘", "R7": "已处理", "R12": "已安排陪访"}
KEYS = {f"{rule.lower()}:done": rule for rule in WORK_ORDER_BUTTONS}

ACTED = "{label} · {name}"
ALREADY = ACTED  # a later presser sees the card as everyone does: who handled it
UNKNOWN_CARD = "这张任务卡片已失效或无法识别，不需要再处理。"
NOT_YOURS = "这张任务卡片不是发给你的，操作没有记录。"
NO_CODE = "已记录：{label}。（卡片状态暂时无法更新）"
NO_CODE_ALREADY = "{name} 已经处理过这张卡片（{label}）。"
SOMEONE = "有人"

router = Router(name="workorders")


class WorkOrderPress:
    """A template_card_event for one of these cards' buttons."""

    def __call__(self, ctx: Context) -> bool:
        m = ctx.message
        return m.msg_type == "event" and m.event == "template_card_event" and (m.event_key or "") in KEYS


@router.handle(WorkOrderPress())
async def pressed(ctx: Context) -> Reply:
    """R2/R7/R12: record the first press (who, when; audited) and update the card for all its recipients."""
    assert ctx.user is not None
    message = ctx.message
    rule = KEYS[message.event_key or ""]
    label = WORK_ORDER_BUTTONS[rule]
    esc = None
    if message.task_id:
        esc = await EscalationRepo(ctx.session).by_task_id(message.task_id[:128], for_update=True)
    if esc is None or esc.rule != rule:
        return Text(UNKNOWN_CARD)
    got_card = _card_recipients(esc)
    if message.sender.lower() not in {r.lower() for r in got_card}:
        return Text(NOT_YOURS)
    if esc.acted_at is not None:
        actor = await ctx.repos.users.get(esc.acted_by) if esc.acted_by is not None else None
        name = actor.name if actor is not None else SOMEONE
        if not message.response_code:
            return Text(NO_CODE_ALREADY.format(name=name, label=label))
        return UpdateCard(message.response_code, (message.sender,), replace_name=ALREADY.format(name=name, label=label))
    esc.acted_at, esc.acted_by, esc.action, esc.status = ctx.now, ctx.user.id, "done", "done"
    await ctx.repos.pipeline.audit(
        at=ctx.now, actor_id=ctx.user.id, action=f"{rule.lower()}.done", subject_type="escalation", subject_id=esc.id,
        detail={"task_id": esc.task_id, "subject_type": esc.subject_type, "subject_id": esc.subject_id,
                "period": esc.period},
    )
    if not message.response_code:
        return Text(NO_CODE.format(label=label))
    return UpdateCard(message.response_code, tuple(got_card),
                      replace_name=ACTED.format(label=label, name=ctx.user.name))


def _card_recipients(esc: Escalation) -> list[str]:
    """Who got the card itself (anyone sent a text copy because "a|b|c" did not fit is not among them)."""
    card_to = esc.data.get("card_to") if isinstance(esc.data, dict) else None
    names = card_to if isinstance(card_to, list) else esc.recipients
    return [str(n) for n in names if n]
