"""R4 escalation card buttons: a press (WeCom `template_card_event`) records who did what and updates the
card for everyone who got it; 稍后提醒 snoozes it for `[rules] snooze_hours` (the R4 sweep sends it again
once when the snooze ends, if the deal is still stalled in that stage).

The event's EventKey names the button ("r4:done"), its TaskId the card (escalations.task_id) and its
ResponseCode (single-use) feeds message/update_template_card. A card went out as one message to
"manager|superior", so one update with this press's code reaches both. A press after someone already
acted changes nothing and shows the presser who acted; an unknown card or a person the card was not
sent to gets a plain answer. Missing or odd fields never fail the message.
"""

from __future__ import annotations

from datetime import timedelta

from bot.channels.base import Reply, Text
from bot.dispatch.context import Context
from bot.dispatch.router import Router
from handlers.presses import handle_press
from store.models import Escalation

RULE = "R4"
KEY_PREFIX = "r4:"
# Button key -> (action recorded, label, WeCom button style 1–4). The sweep builds the card from it.
R4_BUTTONS: dict[str, tuple[str, str, int]] = {
    "r4:done": ("done", "已跟进", 1),
    "r4:joint_visit": ("joint_visit", "约陪访", 2),
    "r4:snooze": ("snooze", "稍后提醒", 3),
}
ACTION_LABELS = {action: label for action, label, _ in R4_BUTTONS.values()}

ALREADY = "{name} 已处理：{label}"
UNKNOWN_CARD = "这张提醒卡片已失效或无法识别，不需要再处理。"
NOT_YOURS = "这张提醒卡片不是发给你的，操作没有记录。"

router = Router(name="cards")


class R4Press:
    """A template_card_event for an R4 button (its key carries the rule's prefix)."""

    def __call__(self, ctx: Context) -> bool:
        m = ctx.message
        return m.msg_type == "event" and m.event == "template_card_event" and (m.event_key or "").startswith(KEY_PREFIX)


@router.handle(R4Press())
async def pressed(ctx: Context) -> Reply:
    """R4: record the first press (who, when, which button; audited) and update the card for all recipients."""
    assert ctx.user is not None
    button = R4_BUTTONS.get(ctx.message.event_key or "")
    if button is None:
        return Text(UNKNOWN_CARD)
    action, label, _ = button

    async def record(esc: Escalation) -> str:
        assert ctx.user is not None
        esc.acted_at, esc.acted_by, esc.action = ctx.now, ctx.user.id, action
        if action == "snooze":
            esc.status = "snoozed"
            esc.snoozed_until = ctx.now + timedelta(hours=ctx.settings.rules.snooze_hours)
        else:
            esc.status = "done"
        await ctx.repos.pipeline.audit(
            at=ctx.now, actor_id=ctx.user.id, action=f"r4.{action}", subject_type="escalation", subject_id=esc.id,
            detail={"task_id": esc.task_id, "opportunity_id": esc.subject_id, "period": esc.period,
                    "snoozed_until": esc.snoozed_until.isoformat() if esc.snoozed_until else None},
        )
        return label

    return await handle_press(
        ctx, rule=RULE, unknown=UNKNOWN_CARD, not_yours=NOT_YOURS, already=ALREADY,
        label_of=lambda esc: ACTION_LABELS.get(esc.action or "", esc.action or ""), record=record,
    )
