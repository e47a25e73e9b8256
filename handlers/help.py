"""帮助: what the bot can do, with examples a rep can copy — built from the routers really included,
so it never offers a command that does not exist yet."""

from __future__ import annotations

from bot.channels.base import Markdown, Reply
from bot.dispatch.context import Context
from bot.dispatch.filters import Command, MsgType
from bot.dispatch.router import HelpEntry, Router

HELP_WORDS = ("帮助", "help", "?", "？", "菜单", "怎么用", "你能做什么", "功能")
INTRO = "**salesbot 能帮你做什么**\n直接用平时说话的方式发给我就行，不用填表："
ALWAYS = (HelpEntry("查看帮助", "帮助"), HelpEntry("退出正在进行的对话", "取消"))


def help_text(entries: list[HelpEntry]) -> str:
    lines = [INTRO, ""]
    lines += [f"> **{e.title}**：{e.example}" for e in [*entries, *ALWAYS]]
    return "\n".join(lines)


def make_router(flows: Router) -> Router:
    """The 帮助 router for a tree of flow routers (their HelpEntry lists make the text)."""
    text = help_text(flows.help_entries())
    router = Router(name="help")

    @router.handle(MsgType("text"), Command(*HELP_WORDS))
    async def show_help(ctx: Context) -> Reply:
        """The help card, in markdown so it reads well on a phone."""
        return Markdown(text)

    return router
