"""The one-button task cards of the measure sweeps — R2 电话复盘, R7 回款逾期工单, R12 专项陪访: a press (WeCom
`template_card_event`, EventKey "r7:done") records who handled it and updates the card for everyone who got
it (one message to "a|b|c", so one update with this press's ResponseCode reaches all of them).

A press after someone already handled it changes nothing and shows the presser who did; an unknown card or a
person the card was not sent to gets a plain answer. (R4's three-button cards are handlers/cards.py.)
"""

from __future__ import annotations

from bot.channels.base import Reply
from bot.dispatch.context import Context
from bot.dispatch.router import Router
from handlers.presses import ACTED, handle_press
from store.models import Escalation

# Rule -> its card's button label; the button's key is "<rule in lower case>:done" (jobs/sweeps/periodic.py).
WORK_ORDER_BUTTONS: dict[str, str] = {"R2": "已复盘", "R7": "已处理", "R12": "已安排陪访"}
KEYS = {f"{rule.lower()}:done": rule for rule in WORK_ORDER_BUTTONS}

ALREADY = ACTED  # a later presser sees the card as everyone does: who handled it
UNKNOWN_CARD = "这张任务卡片已失效或无法识别，不需要再处理。"
NOT_YOURS = "这张任务卡片不是发给你的，操作没有记录。"

router = Router(name="workorders")


class WorkOrderPress:
    """A template_card_event for one of these cards' buttons."""

    def __call__(self, ctx: Context) -> bool:
        m = ctx.message
        return m.msg_type == "event" and m.event == "template_card_event" and (m.event_key or "") in KEYS


@router.handle(WorkOrderPress())
async def pressed(ctx: Context) -> Reply:
    """R2/R7/R12: record the first press (who, when; audited) and update the card for all its recipients."""
    rule = KEYS[ctx.message.event_key or ""]
    label = WORK_ORDER_BUTTONS[rule]

    async def record(esc: Escalation) -> str:
        assert ctx.user is not None
        esc.acted_at, esc.acted_by, esc.action, esc.status = ctx.now, ctx.user.id, "done", "done"
        await ctx.repos.pipeline.audit(
            at=ctx.now, actor_id=ctx.user.id, action=f"{rule.lower()}.done", subject_type="escalation",
            subject_id=esc.id, detail={"task_id": esc.task_id, "subject_type": esc.subject_type,
                                       "subject_id": esc.subject_id, "period": esc.period},
        )
        return label

    return await handle_press(ctx, rule=rule, unknown=UNKNOWN_CARD, not_yours=NOT_YOURS, already=ALREADY,
                              label_of=lambda esc: label, record=record)
