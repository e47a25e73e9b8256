"""R6 gate status of one opportunity, as the stage, key-action and pipeline flows show it."""

from __future__ import annotations

from collections.abc import Sequence

from bot.dispatch.context import Context
from bot.rules.gates import ActionState, Missing, missing_for_move, next_stage
from store.models import KeyAction, Opportunity

NEEDS_ATTACHMENT = "缺附件"
DOWNLOADING = "附件下载中"
NEEDS_SIGNOFF = "缺负责人确认"


def action_states(rows: dict[str, KeyAction]) -> dict[str, ActionState]:
    """Key action rows → what the gate rule needs: a stored file (R6: a file that was only named, or
    that could not be downloaded, does not open a gate) and the owner's sign-off."""
    return {
        name: ActionState(
            attached=row.attached_at is not None and row.attachment_path is not None,
            signed_off=row.signed_off_at is not None,
            downloading=row.attached_at is not None and row.attachment_path is None,
        )
        for name, row in rows.items()
    }


async def missing_for(ctx: Context, opp: Opportunity, target: str) -> list[Missing]:
    """R6: what a move of `opp` to `target` still lacks."""
    rows = (await ctx.repos.pipeline.key_actions([opp.id]))[opp.id]
    funnel = ctx.settings.funnel
    return missing_for_move(funnel.stages, funnel.gates, opp.stage, target, action_states(rows))


async def next_gate(ctx: Context, opp: Opportunity) -> tuple[str | None, list[Missing]]:
    """The next stage and what entering it still lacks."""
    target = next_stage(ctx.settings.funnel.stages, opp.stage)
    if target is None:
        return None, []
    return target, await missing_for(ctx, opp, target)


def missing_lines(missing: Sequence[Missing]) -> list[str]:
    """One line per missing key action: its name and what it lacks."""
    lines = []
    for m in missing:
        attachment = DOWNLOADING if m.downloading else NEEDS_ATTACHMENT
        lacks = [label for flag, label in ((m.needs_attachment, attachment), (m.needs_signoff, NEEDS_SIGNOFF)) if flag]
        lines.append(f"· {m.name}（{'、'.join(lacks)}）")
    return lines
