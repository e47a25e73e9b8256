"""Conversation flows, one module each; `build_router()` assembles them in priority order."""

from __future__ import annotations

from bot.dispatch.router import Router


def build_router() -> Router:
    """The root router: 帮助, 取消, then the flows (each with its HelpEntry lines; inside each, state
    handlers answer their own questions), then the fallback for anything not understood."""
    from handlers import (
        cards,
        checkin,
        fallback,
        help,
        keyactions,
        manager,
        notes,
        pipeline,
        rebate,
        score,
        stages,
        standup,
        workorders,
    )

    modules = (rebate, score, manager, checkin, notes, stages, keyactions, pipeline, standup, cards, workorders)
    flows = Router(name="flows")
    # A flow's answers to its own pending question come before any intent (a reply "见完了，客户认可"
    # to "结论？" is the conclusion, not a new check-in); leading commands still leave the flow
    # (handlers.common.Answering).
    flows.include(*(m.answers for m in modules if hasattr(m, "answers")), *(m.router for m in modules))
    root = Router(name="root")
    root.include(help.make_router(flows), fallback.control, flows, fallback.router)
    return root
