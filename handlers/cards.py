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

from bot.channels.base import Reply, Text, UpdateCard
from bot.dispatch.context import Context
from bot.dispatch.router import Router
from store.models import Escalation
from store.repos.escalations import EscalationRepo

RULE = "R4"
KEY_PREFIX = "r4:"
# Button key -> (action recorded, label, WeCom button style 1–4). The sweep builds the card from it.
R4_BUTTONS: dict[str, tuple[str, str, int]] = {
    "r4:done": ("done", "已跟进", 1),
    "r4:joint_visit": ("joint_visit", "约陪访", 2),
    "r4:snooze": ("snooze", "稍后提醒", 3),
}
ACTION_LABELS = {action: label for action, label, _ in R4_BUTTONS.values()}

ACTED = "{label} · {name}"
ALREADY = "{name} 已处理：{label}"
UNKNOWN_CARD = "这张提醒卡片已失效或无法识别，不需要再处理。"
NOT_YOURS = "这张提醒卡片不是发给你的，操作没有记录。"
NO_CODE = "已记录：{label}。（卡片状态暂时无法更新）"
NO_CODE_ALREADY = "{name} 已处理过这张卡片：{label}。"
SOMEONE = "有人"

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
    message = ctx.message
    button = R4_BUTTONS.get(message.event_key or "")
    esc = None
    if message.task_id:
        esc = await EscalationRepo(ctx.session).by_task_id(message.task_id[:128], for_update=True)
    if esc is None or esc.rule != RULE or button is None:
        return Text(UNKNOWN_CARD)
    got_card = _card_recipients(esc)
    if message.sender.lower() not in {r.lower() for r in got_card}:
        return Text(NOT_YOURS)
    if esc.acted_at is not None:
        actor = await ctx.repos.users.get(esc.acted_by) if esc.acted_by is not None else None
        name = actor.name if actor is not None else SOMEONE
        label = ACTION_LABELS.get(esc.action or "", esc.action or "")
        if not message.response_code:
            return Text(NO_CODE_ALREADY.format(name=name, label=label))
        return UpdateCard(message.response_code, (message.sender,), replace_name=ALREADY.format(name=name, label=label))
    action, label, _ = button
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
    if not message.response_code:
        return Text(NO_CODE.format(label=label))
    acted = ACTED.format(label=label, name=ctx.user.name)
    return UpdateCard(message.response_code, tuple(got_card), replace_name=acted)


def _card_recipients(esc: Escalation) -> list[str]:
    """Who got the card itself (a superior copied by text when "a|b" did not fit is not among them)."""
    card_to = esc.data.get("card_to") if isinstance(esc.data, dict) else None
    names = card_to if isinstance(card_to, list) else esc.recipients
    return [str(n) for n in names or () if n]
