"""我的商机: the rep's open opportunities with stage, days in stage and what the next gate needs (R6)."""

from __future__ import annotations

from bot.channels.base import Markdown, Reply, Text
from bot.dispatch.context import Context
from bot.dispatch.router import HelpEntry, Router
from bot.nlu.intents import Intent, Parsed
from handlers.common import IntentIs
from handlers.gating import next_gate

EMPTY = "你目前没有进行中的商机。"
TITLE = "**我的商机（{n} 个）**"
LINE = "{n}. **{customer}**｜{stage}｜已 {days} 天{silent}"
NEXT_READY = "   下一步「{stage}」：条件已齐，可以推进"
NEXT_MISSING = "   下一步「{stage}」还差：{names}"
LAST = "   已是最后阶段"
SILENT = "｜⚠️静默"
MORE = "……只列出最早进入当前阶段的 {n} 个"
LIMIT = 20

router = Router(name="pipeline", help=(HelpEntry("查看我的商机和下一关要求", "我的商机"),))


@router.handle(IntentIs(Intent.MY_PIPELINE))
async def my_pipeline(ctx: Context, parsed: Parsed) -> Reply:
    """Oldest stage entry first: the deals most at risk of stalling (R4) lead the list."""
    return await pipeline_reply(ctx)


async def pipeline_reply(ctx: Context) -> Reply:
    """The rep's own pipeline (also what a rep gets for a bare "漏斗", handlers/manager.py)."""
    assert ctx.user is not None
    opps = await ctx.repos.pipeline.open_for_owner(ctx.user.id, limit=LIMIT + 1)
    if not opps:
        return Text(EMPTY)
    lines = [TITLE.format(n=len(opps) if len(opps) <= LIMIT else f"{LIMIT}+")]
    for n, opp in enumerate(opps[:LIMIT], 1):
        customer = await ctx.repos.customers.get(opp.customer_id)
        days = max(0, (ctx.now - opp.stage_entered_at).days)
        lines.append(LINE.format(n=n, customer=customer.name if customer else opp.name, stage=opp.stage, days=days,
                                 silent=SILENT if opp.status == "silent" else ""))
        stage, missing = await next_gate(ctx, opp)
        if stage is None:
            lines.append(LAST)
        elif missing:
            lines.append(NEXT_MISSING.format(stage=stage, names="、".join(m.name for m in missing)))
        else:
            lines.append(NEXT_READY.format(stage=stage))
    if len(opps) > LIMIT:
        lines.append(MORE.format(n=LIMIT))
    return Markdown("\n".join(lines))
