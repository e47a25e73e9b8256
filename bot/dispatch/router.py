"""Nested routers: handlers are tried in registration order, child routers after own handlers;
the first handler whose filters all pass wins (aiogram's model)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.channels.base import Reply
from bot.dispatch.context import Context
from bot.dispatch.filters import Filter

HandlerResult = Reply | list[Reply] | None
Handler = Callable[..., Awaitable[HandlerResult]]


@dataclass(frozen=True)
class HelpEntry:
    """One line of 帮助: what a flow does and an example a rep can copy."""

    title: str
    example: str


@dataclass(frozen=True)
class Route:
    handler: Handler
    filters: tuple[Filter, ...]


class Router:
    def __init__(self, name: str, help: tuple[HelpEntry, ...] = ()) -> None:
        self.name = name
        self.help = help  # what this router offers, for 帮助 (only what is really routed is listed)
        self._routes: list[Route] = []
        self._children: list[Router] = []

    def include(self, *routers: Router) -> None:
        self._children.extend(routers)

    def help_entries(self) -> list[HelpEntry]:
        """This router's help entries and its children's, in routing order."""
        entries = list(self.help)
        for child in self._children:
            entries += child.help_entries()
        return entries

    def handle(self, *filters: Filter) -> Callable[[Handler], Handler]:
        """Register a handler behind filters (all must pass)."""

        def register(handler: Handler) -> Handler:
            self._routes.append(Route(handler, filters))
            return handler

        return register

    async def resolve(self, ctx: Context) -> tuple[Handler, dict[str, Any]] | None:
        for route in self._routes:
            kwargs: dict[str, Any] = {}
            for flt in route.filters:
                result = flt(ctx)
                if inspect.isawaitable(result):
                    result = await result
                if not result:
                    break
                if isinstance(result, dict):
                    kwargs.update(result)
            else:
                return route.handler, kwargs
        for child in self._children:
            found = await child.resolve(ctx)
            if found is not None:
                return found
        return None
