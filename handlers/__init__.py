"""Conversation flows, one module each; `build_router()` assembles them in priority order."""

from __future__ import annotations

from bot.dispatch.router import Router


def build_router() -> Router:
    """The root router: 帮助, then the flows (state handlers before intents; later issues add them
    to `flows`, each with its HelpEntry lines), then the fallback for anything not understood."""
    from handlers import fallback, help

    flows = Router(name="flows")
    root = Router(name="root")
    root.include(help.make_router(flows), flows, fallback.router)
    return root
