"""帮助: what the bot can do, with examples a rep can copy."""

from __future__ import annotations

from bot.channels.base import Markdown, Reply
from bot.dispatch.context import Context
from bot.dispatch.filters import Command, MsgType
from bot.dispatch.router import Router

HELP_WORDS = ("帮助", "help", "?", "？", "菜单", "怎么用", "你能做什么", "功能")

HELP_TEXT = """**salesbot 能帮你做什么**
直接用平时说话的方式发给我就行，不用填表：

> **记录拜访**：今日拜访完成 华远科技 1小时 客户认可方案，下周报价
> **会议纪要**：纪要：客户预算50万，决策人是王总，竞品是XX
> **推进阶段**：华远 进入 方案呈现
> **我的商机**：看看手上的商机卡在哪一步
> **我的返点**：看看已到手、待到账和冻结的返点
> **我的过程分**：看看本周过程健康分和提升建议

主管还可以问：团队健康度、漏斗 华东、4小时率、跃迁率。
随时发「取消」可以退出正在进行的对话。"""

router = Router(name="help")


@router.handle(MsgType("text"), Command(*HELP_WORDS))
async def show_help(ctx: Context) -> Reply:
    """The help card, in markdown so it reads well on a phone."""
    return Markdown(HELP_TEXT)
