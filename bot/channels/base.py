"""The contract every channel fills: what comes in (IncomingMessage) and what handlers return (Reply)."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from bot.clock import ensure_aware


@dataclass(frozen=True)
class Location:
    lat: float
    lng: float
    label: str | None = None
    scale: int | None = None
    precision: float | None = None


@dataclass(frozen=True)
class IncomingMessage:
    """One verified inbound message or event. `sender` comes only from the verified envelope."""

    channel: str  # wecom | dingtalk | local
    dedup_key: str
    sender: str
    msg_type: str  # text | location | image | voice | video | link | event | <unknown type as sent>
    created_at: datetime
    agent_id: str | None = None
    msg_id: str | None = None
    text: str | None = None
    event: str | None = None  # lower-case event name for msg_type == "event"
    event_key: str | None = None
    task_id: str | None = None
    card_type: str | None = None
    response_code: str | None = None
    location: Location | None = None
    media_id: str | None = None
    pic_url: str | None = None
    media_format: str | None = None
    recognition: str | None = None  # voice-to-text where the platform gives it
    link_title: str | None = None
    link_description: str | None = None
    link_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe form stored on the inbox row, so processing can be redone after a crash."""
        # Shallow on purpose (asdict deep-copies every field: measurable on the ack path).
        data = {name: getattr(self, name) for name in _incoming_fields()}
        data["created_at"] = self.created_at.isoformat()
        data["location"] = asdict(self.location) if self.location is not None else None
        data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> IncomingMessage:
        values = dict(data)
        values["created_at"] = ensure_aware(datetime.fromisoformat(values["created_at"]))
        loc = values.get("location")
        values["location"] = Location(**loc) if loc else None
        return cls(**values)


@functools.cache
def _incoming_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(IncomingMessage))


# ------------------------------------------------------------------ replies


@dataclass(frozen=True)
class Text:
    content: str
    kind: str = field(default="text", init=False)


@dataclass(frozen=True)
class Markdown:
    content: str
    kind: str = field(default="markdown", init=False)


@dataclass(frozen=True)
class TemplateCard:
    """A WeCom template_card body (e.g. button_interaction); `task_id` must be unique per card."""

    card: dict[str, Any]
    kind: str = field(default="template_card", init=False)


@dataclass(frozen=True)
class UpdateCard:
    """message/update_template_card: replace the buttons (or the whole card) after a press."""

    response_code: str
    userids: tuple[str, ...]
    replace_name: str | None = None
    card: dict[str, Any] | None = None
    kind: str = field(default="update_card", init=False)


Reply = Text | Markdown | TemplateCard | UpdateCard


@dataclass(frozen=True)
class Outgoing:
    """A reply addressed to someone other than the sender (or to several people)."""

    recipient: str
    reply: Reply


def reply_payload(reply: Reply) -> dict[str, Any]:
    """The outbox payload for a reply (channel-neutral; the sender maps it to the platform's body)."""
    if isinstance(reply, Text | Markdown):
        return {"content": reply.content}
    if isinstance(reply, TemplateCard):
        return {"template_card": reply.card}
    payload: dict[str, Any] = {"response_code": reply.response_code, "userids": list(reply.userids)}
    if reply.card is not None:
        payload["template_card"] = reply.card
    else:
        payload["button"] = {"replace_name": reply.replace_name or ""}
    return payload
