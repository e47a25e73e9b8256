"""What every card button press shares (R2, R4, R7, R12): the card's escalation by task_id, only its
recipients may act, a later press shows who already acted, and the first press updates the card for all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.channels.base import Reply, Text, UpdateCard
from bot.dispatch.context import Context
from store.models import Escalation
from store.repos.escalations import EscalationRepo

ACTED = "{label} · {name}"
NO_CODE = "已记录：{label}。（卡片状态暂时无法更新）"
NO_CODE_ALREADY = "{name} 已处理过这张卡片：{label}。"
SOMEONE = "有人"

# The first press: record it on the escalation (and audit it); returns the label everyone's card shows.
Record = Callable[[Escalation], Awaitable[str]]


async def handle_press(ctx: Context, *, rule: str | None, unknown: str, not_yours: str, already: str,
                       label_of: Callable[[Escalation], str], record: Record) -> Reply:
    """The shared steps of a press; `rule` None accepts any rule (the caller checked the button)."""
    message = ctx.message
    assert ctx.user is not None
    esc = None
    if message.task_id:
        esc = await EscalationRepo(ctx.session).by_task_id(message.task_id[:128], for_update=True)
    if esc is None or (rule is not None and esc.rule != rule):
        return Text(unknown)
    got_card = card_recipients(esc)
    if message.sender.lower() not in {r.lower() for r in got_card}:
        return Text(not_yours)
    if esc.acted_at is not None:
        actor = await ctx.repos.users.get(esc.acted_by) if esc.acted_by is not None else None
        name, label = actor.name if actor is not None else SOMEONE, label_of(esc)
        if not message.response_code:
            return Text(NO_CODE_ALREADY.format(name=name, label=label))
        return UpdateCard(message.response_code, (message.sender,), replace_name=already.format(name=name, label=label))
    label = await record(esc)
    if not message.response_code:
        return Text(NO_CODE.format(label=label))
    acted = ACTED.format(label=label, name=ctx.user.name)
    return UpdateCard(message.response_code, tuple(got_card), replace_name=acted)


def card_recipients(esc: Escalation) -> list[str]:
    """Who got the card itself (anyone sent a text copy because "a|b|c" did not fit is not among them)."""
    card_to = esc.data.get("card_to") if isinstance(esc.data, dict) else None
    names = card_to if isinstance(card_to, list) else esc.recipients
    return [str(n) for n in names or () if n]
