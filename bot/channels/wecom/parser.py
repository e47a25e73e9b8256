"""Safe XML for WeCom callbacks: no DTDs or entities, flat <xml> documents only.

The outer envelope is screened for DTD/entity declarations before any parser sees it; both the
envelope and the decrypted message are then parsed by defusedxml with DTDs forbidden. Known
message types are read through wechatpy's message classes; template_card_event (which wechatpy
does not parse) and unknown types are mapped here.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from wechatpy.enterprise.messages import MESSAGE_TYPES

from bot.channels.base import IncomingMessage, Location

_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)
MAX_FIELD_CHARS = 65536  # the body cap binds first; a 10,000-character message still arrives and gets a clear reply
MAX_FIELDS = 500


class XmlError(ValueError):
    """The XML is malformed, hostile or not a WeCom document."""


def reject_declarations(body: bytes) -> None:
    """Refuse non-UTF-8 bodies and DTD/entity declarations before any parsing (XXE, billion laughs).

    WeCom sends UTF-8; checking the encoding first means the screen cannot be sidestepped with UTF-16.
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise XmlError("body is not UTF-8") from None
    if _DECLARATION.search(body):
        raise XmlError("DTD or entity declarations are not allowed")


def parse_flat(xml: str | bytes) -> dict[str, str]:
    """Parse `<xml><Tag>value</Tag>...</xml>` into {Tag: value}; nested elements keep their XML-free text."""
    try:
        root: Element = fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise XmlError(f"malformed XML: {type(exc).__name__}") from None
    if root.tag != "xml":
        raise XmlError("root element must be <xml>")
    fields: dict[str, str] = {}
    for child in root:
        if len(child):
            # Nested structures (e.g. SelectedItems of a card) are flattened with a prefix; repeated
            # leaves keep every value (Tag, Tag#2, ...).
            for sub in child.iter():
                if sub is child or len(sub):
                    continue
                key, n = f"{child.tag}.{sub.tag}", 1
                while key in fields:
                    n += 1
                    key = f"{child.tag}.{sub.tag}#{n}"
                value = (sub.text or "").strip()
                if len(value) > MAX_FIELD_CHARS or len(fields) > MAX_FIELDS:
                    raise XmlError(f"field {key} is too long or there are too many fields")
                fields[key] = value
            continue
        value = child.text or ""
        if len(value) > MAX_FIELD_CHARS:
            raise XmlError(f"field {child.tag} is too long")
        fields[child.tag] = value
    return fields


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def dedup_key(fields: dict[str, str]) -> str:
    """MsgId for messages; FromUserName + CreateTime + Event + EventKey + TaskId for events (FACTS 4).

    Event keys are hashed: the parts may be long (a button key is up to 1024 bytes) and joining them
    with a separator could make two different events collide.
    """
    msg_id = fields.get("MsgId", "")
    if fields.get("MsgType", "").lower() != "event" and msg_id:
        if msg_id.isdigit() and len(msg_id) <= 64:
            return f"msg:{msg_id}"
        return "msg#" + hashlib.sha256(msg_id.encode("utf-8")).hexdigest()
    parts = [fields.get(k, "") for k in ("FromUserName", "CreateTime", "Event", "EventKey", "TaskId")]
    return "evt:" + hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


def to_incoming(fields: dict[str, str]) -> IncomingMessage:
    """Map a decrypted WeCom message to the channel-neutral IncomingMessage."""
    sender = fields.get("FromUserName", "")
    if not sender:
        raise XmlError("FromUserName missing")
    msg_type = fields.get("MsgType", "").strip().lower()
    if not msg_type:
        raise XmlError("MsgType missing")
    # Column widths of the inbox: a longer value is not a WeCom message (and must not fail a batch).
    for key, limit in (("FromUserName", 64), ("MsgType", 32), ("Event", 64), ("AgentID", 32)):
        if len(fields.get(key, "")) > limit:
            raise XmlError(f"{key} is too long")
    created = _int(fields.get("CreateTime"))
    if created is None or not 0 <= created < 2**32:
        raise XmlError("CreateTime missing or invalid")
    base: dict[str, Any] = {
        "channel": "wecom",
        "dedup_key": dedup_key(fields),
        "sender": sender,
        "msg_type": msg_type,
        "created_at": datetime.fromtimestamp(created, UTC),
        "agent_id": fields.get("AgentID") or None,
        "msg_id": fields.get("MsgId") or None,
    }
    if msg_type == "event":
        return _event(fields, base)
    cls = MESSAGE_TYPES.get(msg_type)
    if cls is None:
        return IncomingMessage(**base, extra=fields)
    msg = cls(fields)
    if msg_type == "text":
        return IncomingMessage(**base, text=msg.content or "")
    if msg_type == "location":
        lat, lng = _float(fields.get("Location_X")), _float(fields.get("Location_Y"))
        loc = None
        if lat is not None and lng is not None:
            loc = Location(lat, lng, fields.get("Label") or None, _int(fields.get("Scale")))
        return IncomingMessage(**base, location=loc)
    if msg_type == "image":
        return IncomingMessage(**base, media_id=fields.get("MediaId"), pic_url=fields.get("PicUrl"))
    if msg_type == "voice":
        return IncomingMessage(
            **base,
            media_id=fields.get("MediaId"),
            media_format=fields.get("Format"),
            recognition=fields.get("Recognition") or None,
        )
    if msg_type == "link":
        return IncomingMessage(
            **base,
            link_title=msg.title,
            link_description=msg.description,
            link_url=msg.url,
            pic_url=fields.get("PicUrl"),
        )
    return IncomingMessage(**base, media_id=fields.get("MediaId"), extra=fields)


def _event(fields: dict[str, str], base: dict[str, Any]) -> IncomingMessage:
    event = fields.get("Event", "").strip().lower()
    base = {**base, "event": event, "msg_id": None}
    if event == "template_card_event":
        return IncomingMessage(
            **base,
            event_key=fields.get("EventKey") or None,
            task_id=fields.get("TaskId") or None,
            card_type=fields.get("CardType") or None,
            response_code=fields.get("ResponseCode") or None,
            extra={k: v for k, v in fields.items() if "." in k},
        )
    if event == "location":
        lat, lng = _float(fields.get("Latitude")), _float(fields.get("Longitude"))
        loc = None
        if lat is not None and lng is not None:
            loc = Location(lat, lng, precision=_float(fields.get("Precision")))
        return IncomingMessage(**base, location=loc)
    return IncomingMessage(**base, event_key=fields.get("EventKey") or None)
