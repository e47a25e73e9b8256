"""Filters: small callables on a Context. Returning a dict passes parsed values to the handler."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from bot.dispatch.context import Context

FilterResult = bool | dict[str, Any]
Filter = Callable[[Context], FilterResult | Awaitable[FilterResult]]


def normalize(text: str) -> str:
    """NFKC (full-width → half-width), trimmed, inner whitespace collapsed, lower-case Latin."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc" or ch in "\n\t")
    return re.sub(r"\s+", " ", text).strip().lower()


class MsgType:
    def __init__(self, *types: str) -> None:
        self.types = set(types)

    def __call__(self, ctx: Context) -> bool:
        return ctx.message.msg_type in self.types


class Event:
    def __init__(self, *events: str) -> None:
        self.events = {e.lower() for e in events}

    def __call__(self, ctx: Context) -> bool:
        return ctx.message.msg_type == "event" and (ctx.message.event or "") in self.events


class Command:
    """Text equal to one of the words (after normalisation, ignoring trailing punctuation)."""

    def __init__(self, *words: str) -> None:
        self.words = {normalize(w) for w in words}

    def __call__(self, ctx: Context) -> bool:
        if ctx.message.msg_type != "text" or ctx.message.text is None:
            return False
        text = normalize(ctx.message.text)
        return text in self.words or text.rstrip("!?。！？.~") in self.words


class Regex:
    """Text matching a pattern; named groups are passed to the handler."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def __call__(self, ctx: Context) -> FilterResult:
        if ctx.message.text is None:
            return False
        match = self.pattern.search(normalize(ctx.message.text))
        return ({k: v for k, v in match.groupdict().items() if v is not None} or True) if match else False


class InFlow:
    """The user is in `flow` (optionally at `step`): state filters run before intents."""

    def __init__(self, flow: str, step: str | None = None) -> None:
        self.flow, self.step = flow, step

    def __call__(self, ctx: Context) -> bool:
        return ctx.state.flow == self.flow and (self.step is None or ctx.state.step == self.step)
