"""A helpful answer to anything not understood, never silence."""

from __future__ import annotations

from bot.channels.base import Reply, Text
from bot.dispatch.context import Context
from bot.dispatch.filters import Command, Event, MsgType, normalize
from bot.dispatch.router import Router

CANCELLED = "好的，已取消。需要时随时再来找我～"
NOTHING_TO_CANCEL = "当前没有进行中的对话，不需要取消哦。"
NOT_UNDERSTOOD = "抱歉，我没看懂「{echo}」。发「帮助」看看我现在能做什么，每一项都有可以照着发的例子。"
CLOSEST = "\n你是不是想说：\n{examples}"
LOCATION_NOTED = "📍 收到你的位置{label}，已记下。"
MEDIA_NOTED = "收到{what}了。我暂时还不能从{what}里读出内容，请用文字告诉我要记录什么，或发「帮助」看看我能做什么。"
UNSUPPORTED = "这种消息我暂时还处理不了，请发文字给我，或发「帮助」看看我能做什么。"
ECHO_LIMIT = 20

router = Router(name="fallback")
# Before the flows: "取消" must leave a flow even where the flow would take any text as an answer.
control = Router(name="control")


@control.handle(MsgType("text"), Command("取消", "cancel", "算了", "不用了", "退出"))
async def cancel(ctx: Context) -> Reply:
    """Leave whatever flow the user is in."""
    if ctx.state.flow is None:
        return Text(NOTHING_TO_CANCEL)
    ctx.state.clear()
    return Text(CANCELLED)


@router.handle(MsgType("location"))
async def location(ctx: Context) -> Reply:
    loc = ctx.message.location
    label = f"（{loc.label}）" if loc and loc.label else ""
    return Text(LOCATION_NOTED.format(label=label))


@router.handle(MsgType("image", "voice", "video"))
async def media(ctx: Context) -> Reply:
    what = {"image": "图片", "voice": "语音", "video": "视频"}[ctx.message.msg_type]
    return Text(MEDIA_NOTED.format(what=what))


@router.handle(MsgType("text"))
async def not_understood(ctx: Context) -> Reply:
    """Echo a short, cleaned part of what was said so the reply is clearly about this message."""
    echo = normalize(ctx.message.text or "")
    echo = echo[:ECHO_LIMIT] + ("…" if len(echo) > ECHO_LIMIT else "")
    reply = NOT_UNDERSTOOD.format(echo=echo or "（空白）")
    if ctx.nlu is not None and echo:
        examples = ctx.nlu.parser.suggestions(ctx.message.text or "")
        reply += CLOSEST.format(examples="\n".join(f"· {e}" for e in examples))
    return Text(reply)


@router.handle(Event("enter_agent", "location", "click", "view", "template_card_event"))
async def quiet_event(ctx: Context) -> None:
    """Events are stored (the inbox) and need no reply here; later flows act on them."""
    return None


@router.handle(MsgType("link"))
async def link(ctx: Context) -> Reply:
    return Text(UNSUPPORTED)


@router.handle()
async def unsupported(ctx: Context) -> Reply | None:
    """Unknown message types are stored and acknowledged; people get a pointer to 帮助."""
    return Text(UNSUPPORTED) if ctx.message.msg_type != "event" else None
