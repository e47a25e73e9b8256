"""Conversation flows, one module each; `build_router()` assembles them in priority order."""

from __future__ import annotations

from bot.dispatch.router import Router


def build_router() -> Router:
    """The root router: flow-state handlers first (later issues), then intents, then the fallback."""
    from handlers import fallback, help

    root = Router(name="root")
    root.include(help.router, fallback.router)
    return root
