"""R6 key actions: an image or file sent in chat becomes the attachment of a key action the rep picks
("需求调研报告", "客户签字页", …); "确认 需求调研报告" is the owner's sign-off. Both together complete the
key action, which is what the stage gates ask for.

The media itself is downloaded by jobs/media_fetch.py outside any transaction, within WeCom's 3 days.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.channels.base import Reply, Text
from bot.clock import SHANGHAI
from bot.dispatch.context import Context
from bot.dispatch.filters import Command, MsgType
from bot.dispatch.router import HelpEntry, Router
from bot.nlu.intents import Intent, Parsed
from bot.rules.gates import gate_of
from handlers.common import NUMBER_RE, Answering, IntentIs, message_text
from handlers.gating import missing_lines, next_gate
from store.models import Attachment, KeyAction, Opportunity

FLOW = "attach"
CONFIRM_FLOW = "confirm"
MAX_OPTIONS = 8
ASK_ACTION = ("📎 收到附件。这是哪个关键动作的？回复序号：\n{options}\n"
              "也可以回复「客户 动作名称」，如「华远 需求调研报告」。")
ASK_ACTION_AGAIN = "没对上是哪个关键动作，请回复序号，或「客户 动作名称」。"
SAVED_FOR_LATER = "📎 附件已保存。先把当前这条记录完成，之后发「附件」把它挂到关键动作上。"
NOTHING_SAVED = "没有待挂的附件。直接把图片或文件发给我，再选是哪个关键动作就行。"
ATTACH_WORDS = ("附件", "挂附件", "关联附件", "上传附件")
NO_MEDIA = "这条消息里没有可下载的文件，请重新发送一次。"
NO_OPEN_OPPS = "📎 收到附件，已保存。你目前没有进行中的商机，暂时无法挂到关键动作上。"
ATTACHED = "📎 已作为「{customer}·{action}」的附件（{count} 个文件）。"
ATTACHED_NEXT_OWNER = "负责人确认请发「确认 {action}」。"
CONFIRMED = "✅ 已确认「{customer}·{action}」（{time}）。"
ALREADY_CONFIRMED = "「{customer}·{action}」已经在 {time} 确认过了。"
NEEDS_ATTACHMENT = "「{customer}·{action}」还没有附件：请先把附件（图片/文件）发给我，选好这个动作，再确认。"
EXPIRED = "这个附件已经取不到了（企业微信只保留 3 天），请重新发送一次。"
NO_ATTACHMENT_YET = "「{action}」还没有附件：请先把附件（图片/文件）发给我，选好这个动作，再发「确认 {action}」。"
NO_SUCH_ACTION = "没找到你负责的关键动作「{action}」。{pending}"
PENDING_LIST = "等你确认的有：{names}"
NOTHING_PENDING = "目前没有等你确认的关键动作。"
ASK_WHICH_CONFIRM = "要确认哪一个？回复序号：\n{options}"
GATE_READY = "进入「{stage}」的条件已齐，发「{customer} 进入 {stage}」即可推进。"
GATE_MISSING = "进入「{stage}」还差：\n{names}"

router = Router(name="keyactions", help=(
    HelpEntry("上传关键动作附件", "直接发图片，再选是哪个动作（如 需求调研报告）"),
    HelpEntry("负责人确认关键动作", "确认 需求调研报告"),
))
# Answers to this flow's own questions: tried before every intent (see handlers/__init__.py).
answers = Router(name="keyactions-answers")


@router.handle(MsgType("image", "file"))
async def attachment(ctx: Context) -> Reply:
    """R6: store the media (fetched later) and ask which key action it belongs to."""
    assert ctx.user is not None
    media_id = ctx.message.media_id
    if not media_id:
        return Text(NO_MEDIA)
    row = await ctx.repos.attachments.by_media(ctx.message.channel, media_id)
    if row is None:
        received = ctx.now
        row = await ctx.repos.attachments.add(Attachment(
            channel=ctx.message.channel, media_id=media_id, msg_type=ctx.message.msg_type, user_id=ctx.user.id,
            inbox_id=ctx.inbox_id, status="pending", received_at=received,
            expires_at=min(ctx.message.created_at, received) + timedelta(days=ctx.settings.media.max_age_days),
            next_attempt_at=received, created_at=received,
            file_name=(ctx.message.extra.get("file_name") or None) if ctx.message.extra else None,
        ))
    if ctx.state.flow not in (None, FLOW):
        # The rep is in the middle of something else (a check-in, a note …): keep it, keep the file.
        return Text(SAVED_FOR_LATER)
    pending = list(ctx.state.data.get("attachment_ids", [])) if ctx.state.flow == FLOW else []
    pending = [*pending, row.id] if row.id not in pending else pending
    return await _ask_action(ctx, pending)


@router.handle(MsgType("text"), Command(*ATTACH_WORDS))
async def attach_saved(ctx: Context) -> Reply:
    """"附件": pick the key action for files kept while another flow was going on."""
    assert ctx.user is not None
    since = ctx.now - timedelta(days=ctx.settings.media.max_age_days)
    saved = await ctx.repos.attachments.unassigned(ctx.user.id, since)
    if not saved:
        return Text(NOTHING_SAVED)
    ctx.state.clear()
    return await _ask_action(ctx, [a.id for a in reversed(saved)])


async def _ask_action(ctx: Context, pending: list[int]) -> Reply:
    options = await _attach_options(ctx)
    if not options:
        ctx.state.clear()
        return Text(NO_OPEN_OPPS)
    ctx.state.clear()
    ctx.state.set(FLOW, "action", attachment_ids=pending, options=options)
    return Text(ASK_ACTION.format(options=_numbered(options)))


@answers.handle(MsgType("text", "voice"), Answering(FLOW, "action"))
async def answer_action(ctx: Context) -> Reply:
    data = dict(ctx.state.data)
    options: list[list[Any]] = data.get("options", [])
    choice = await _choose(ctx, message_text(ctx) or "", options)
    if choice is None:
        return Text(ASK_ACTION_AGAIN)
    opp_id, name = int(choice[0]), str(choice[1])
    opp = await ctx.repos.pipeline.get(opp_id)
    if opp is None:
        return Text(ASK_ACTION_AGAIN)
    # The attachment rows are locked first, all in one statement, before the key action is touched: the
    # media fetcher locks an attachment, then its key action; the same order here cannot deadlock with it.
    assert ctx.user is not None
    rows = await ctx.repos.attachments.lock_many([int(i) for i in data.get("attachment_ids", [])])
    key_action = await ctx.repos.pipeline.key_action(opp.id, name, stage=gate_of(ctx.settings.funnel.gates, name),
                                                     now=ctx.now)
    count = 0
    for row in rows:
        if row.user_id != ctx.user.id or row.status == "expired":  # expired: WeCom no longer has the file
            continue
        row.key_action_id = key_action.id
        key_action.attachment_media_id = row.media_id
        key_action.attached_at = ctx.now
        key_action.attachment_path = row.path  # None until the fetcher has stored it
        count += 1
    if count and key_action.signed_off_at is not None:
        # The owner signed what was attached before: a new file needs a new confirmation (R6).
        key_action.signed_off_by, key_action.signed_off_at = None, None
    ctx.state.clear()
    customer = await ctx.repos.customers.get(opp.customer_id)
    label = customer.name if customer else opp.name
    if count == 0:
        return Text(EXPIRED)
    reply = ATTACHED.format(customer=label, action=name, count=count)
    reply += ATTACHED_NEXT_OWNER.format(action=name)
    return Text(reply)


@router.handle(IntentIs(Intent.CONFIRM_ACTION))
async def confirm(ctx: Context, parsed: Parsed) -> Reply:
    """R6: the owner's sign-off (负责人签名) — who and when are recorded."""
    assert ctx.user is not None
    candidates = await _signable(ctx, parsed)
    name = parsed.key_action
    if not candidates and name is not None and gate_of(ctx.settings.funnel.gates, name) is not None:
        if await ctx.repos.pipeline.open_for_owner(ctx.user.id, limit=1):
            return Text(NO_ATTACHMENT_YET.format(action=name))
    if not candidates:
        pending = await _pending_names(ctx)
        text = PENDING_LIST.format(names="、".join(pending)) if pending else NOTHING_PENDING
        return Text(NO_SUCH_ACTION.format(action=name or parsed.key_action_text or "", pending=text))
    ctx.state.clear()
    if len(candidates) > 1:
        options = [[o.id, k.name, await _label(ctx, o), False] for o, k in candidates][:MAX_OPTIONS]
        ctx.state.set(CONFIRM_FLOW, "which", options=options)
        return Text(ASK_WHICH_CONFIRM.format(options=_numbered(options)))
    opp, key_action = candidates[0]
    return await _sign(ctx, opp, key_action)


@answers.handle(MsgType("text", "voice"), Answering(CONFIRM_FLOW, "which"))
async def answer_which(ctx: Context) -> Reply:
    options: list[list[Any]] = ctx.state.data.get("options", [])
    choice = await _choose(ctx, message_text(ctx) or "", options)
    if choice is None:
        return Text(ASK_ACTION_AGAIN)
    ctx.state.clear()
    opp = await ctx.repos.pipeline.get(int(choice[0]))
    if opp is None:
        return Text(ASK_ACTION_AGAIN)
    key_action = (await ctx.repos.pipeline.key_actions([opp.id]))[opp.id].get(str(choice[1]))
    if key_action is None:
        return Text(ASK_ACTION_AGAIN)
    return await _sign(ctx, opp, key_action)


# ---------------------------------------------------------------- helpers


async def _sign(ctx: Context, opp: Opportunity, key_action: KeyAction) -> Reply:
    assert ctx.user is not None
    label = await _label(ctx, opp)
    if key_action.signed_off_at is not None:
        return Text(ALREADY_CONFIRMED.format(customer=label, action=key_action.name, time=_time(key_action)))
    if key_action.attached_at is None:
        return Text(NEEDS_ATTACHMENT.format(customer=label, action=key_action.name))
    key_action.signed_off_by, key_action.signed_off_at = ctx.user.id, ctx.now
    reply = CONFIRMED.format(customer=label, action=key_action.name, time=_time(key_action))
    stage, missing = await next_gate(ctx, opp)
    if stage is not None:
        if missing:
            reply += "\n" + GATE_MISSING.format(stage=stage, names="\n".join(missing_lines(missing)))
        else:
            reply += "\n" + GATE_READY.format(stage=stage, customer=label)
    return Text(reply)


async def _signable(ctx: Context, parsed: Parsed) -> list[tuple[Opportunity, KeyAction]]:
    """The rep's own opportunities' key actions the confirmation can mean (by name, and customer if named)."""
    assert ctx.user is not None
    opps = await ctx.repos.pipeline.open_for_owner(ctx.user.id)
    if parsed.customer is not None and parsed.customer.chosen is not None:
        opps = [o for o in opps if o.customer_id == parsed.customer.chosen.customer_id]
    actions = await ctx.repos.pipeline.key_actions([o.id for o in opps])
    found: list[tuple[Opportunity, KeyAction]] = []
    for opp in opps:
        rows = actions[opp.id]
        if parsed.key_action is not None:
            if parsed.key_action in rows:
                found.append((opp, rows[parsed.key_action]))
            continue
        if ctx.nlu is not None and parsed.key_action_text:
            name = ctx.nlu.parser.match_key_action(parsed.key_action_text, known=rows.keys())
            if name is not None and name in rows:
                found.append((opp, rows[name]))
                continue
        if not parsed.key_action_text:
            found += [(opp, k) for k in rows.values() if k.attached_at is not None and k.signed_off_at is None]
    # Prefer ones waiting for a sign-off when the name fits several.
    waiting = [(o, k) for o, k in found if k.signed_off_at is None]
    return waiting or found


async def _pending_names(ctx: Context) -> list[str]:
    assert ctx.user is not None
    opps = await ctx.repos.pipeline.open_for_owner(ctx.user.id)
    actions = await ctx.repos.pipeline.key_actions([o.id for o in opps])
    return [k.name for o in opps for k in actions[o.id].values() if k.attached_at and not k.signed_off_at][:MAX_OPTIONS]


async def _attach_options(ctx: Context) -> list[list[Any]]:
    """[opportunity id, key action, label] for what the rep's opportunities still need an attachment for:
    every opportunity's next gate first, then the gates after it (stages already passed are not offered)."""
    assert ctx.user is not None
    funnel = ctx.settings.funnel
    opps = await ctx.repos.pipeline.open_for_owner(ctx.user.id)
    rows = await ctx.repos.pipeline.key_actions([o.id for o in opps])
    first: list[list[Any]] = []
    later: list[list[Any]] = []
    for opp in opps:
        label = await _label(ctx, opp)
        _, missing = await next_gate(ctx, opp)
        names = [m.name for m in missing if m.needs_attachment]
        first += [[opp.id, n, label, True] for n in names]  # True: its opportunity's next gate needs it
        current = funnel.stages.index(opp.stage) if opp.stage in funnel.stages else -1
        for stage in funnel.stages[current + 2:]:
            for name in funnel.gates.get(stage, ()):
                row = rows[opp.id].get(name)
                if name not in names and (row is None or row.attached_at is None):
                    later.append([opp.id, name, label, False])
    return (first + later)[:MAX_OPTIONS]


async def _choose(ctx: Context, text: str, options: list[list[Any]]) -> list[Any] | None:
    """A numbered option, or one named by key action — and by customer when one is named ("华远 需求调研报告"),
    which may also be an opportunity of the rep's that the list did not show."""
    number = NUMBER_RE.match(text)
    if number is not None and number.group("n").isdigit():
        n = int(number.group("n"))
        return options[n - 1] if 1 <= n <= len(options) else None
    if ctx.nlu is None or ctx.user is None:
        return None
    name = ctx.nlu.parser.match_key_action(text, known=[str(o[1]) for o in options])
    if name is None:
        return None
    own = await ctx.repos.pipeline.open_for_owner(ctx.user.id)
    match = ctx.nlu.parser.find_customer(text, await ctx.nlu.customer_index(ctx.session), ctx.user.id)
    if match.chosen is not None:
        own = [o for o in own if o.customer_id == match.chosen.customer_id]
    own_ids = {o.id for o in own}
    matching = [o for o in options if o[1] == name and int(o[0]) in own_ids]
    if not matching:
        matching = [[o.id, name, await _label(ctx, o), False] for o in own]
    nearest = [o for o in matching if len(o) > 3 and o[3]]
    if len(matching) > 1 and len(nearest) == 1:
        return nearest[0]  # "客户签字页": the one a next gate is waiting for
    return matching[0] if len(matching) == 1 else None


async def _label(ctx: Context, opp: Opportunity) -> str:
    customer = await ctx.repos.customers.get(opp.customer_id)
    return customer.name if customer is not None else opp.name


def _numbered(options: list[list[Any]]) -> str:
    return "\n".join(f"{n}. {o[2]}·{o[1]}" for n, o in enumerate(options, 1))


def _time(key_action: KeyAction) -> str:
    at = key_action.signed_off_at
    return at.astimezone(SHANGHAI).strftime("%m-%d %H:%M") if at else ""
