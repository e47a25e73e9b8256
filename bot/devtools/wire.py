"""Builds what WeCom sends: signed, encrypted callback envelopes for every message type we handle."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bot.channels.wecom.crypto import WeComCrypto, signature
from bot.clock import Clock


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def message_xml(fields: dict[str, Any]) -> str:
    """A flat WeCom XML document; strings in CDATA, numbers bare (as WeCom sends them)."""
    parts = []
    for key, value in fields.items():
        text = str(value) if isinstance(value, int | float) else _cdata(str(value))
        parts.append(f"<{key}>{text}</{key}>")
    return "<xml>" + "".join(parts) + "</xml>"


@dataclass
class Signed:
    query: str
    body: bytes


class WeComWire:
    """One WeCom app's view of the wire (token, key, corp, agent) for building test callbacks."""

    def __init__(self, token: str, aes_key: str, corp_id: str, agent_id: int, base_time: int = 1_764_468_000,
                 clock: Clock | None = None):
        """CreateTime is `clock`'s now when a clock is given (as WeCom stamps it), else `base_time`."""
        self.token, self.corp_id, self.agent_id = token, corp_id, agent_id
        self.clock = clock
        self.crypto = WeComCrypto(token, aes_key, corp_id)
        # A random start: two wires (e.g. before and after a restart in a test) never reuse a MsgId.
        self._msg_ids = itertools.count(7_000_000_000_000_000_000 + secrets.randbits(50) * 1000)
        self.base_time = base_time

    # ----------------------------------------------------------------- inner messages

    def _now(self) -> int:
        return int(self.clock.now().timestamp()) if self.clock is not None else self.base_time

    def _base(self, sender: str, msg_type: str, create_time: int | None) -> dict[str, Any]:
        return {
            "ToUserName": self.corp_id,
            "FromUserName": sender,
            "CreateTime": create_time if create_time is not None else self._now(),
            "MsgType": msg_type,
        }

    def text(self, sender: str, content: str, *, msg_id: int | None = None, create_time: int | None = None) -> str:
        fields = self._base(sender, "text", create_time)
        fields |= {"Content": content, "MsgId": msg_id or next(self._msg_ids), "AgentID": self.agent_id}
        return message_xml(fields)

    def location(self, sender: str, lat: float, lng: float, label: str = "", *, msg_id: int | None = None) -> str:
        fields = self._base(sender, "location", None)
        fields |= {"Location_X": lat, "Location_Y": lng, "Scale": 15, "Label": label,
                   "MsgId": msg_id or next(self._msg_ids), "AgentID": self.agent_id, "AppType": "wxwork"}
        return message_xml(fields)

    def image(self, sender: str, media_id: str = "MEDIA_ID_1", *, msg_id: int | None = None) -> str:
        fields = self._base(sender, "image", None)
        fields |= {"PicUrl": "https://wework.qpic.cn/x", "MediaId": media_id,
                   "MsgId": msg_id or next(self._msg_ids), "AgentID": self.agent_id}
        return message_xml(fields)

    def voice(self, sender: str, media_id: str = "VOICE_1", recognition: str = "", *, msg_id: int | None = None) -> str:
        fields = self._base(sender, "voice", None)
        fields |= {"MediaId": media_id, "Format": "amr", "MsgId": msg_id or next(self._msg_ids),
                   "AgentID": self.agent_id}
        if recognition:
            fields["Recognition"] = recognition
        return message_xml(fields)

    def link(self, sender: str, title: str, url: str, *, msg_id: int | None = None) -> str:
        fields = self._base(sender, "link", None)
        fields |= {"Title": title, "Description": "desc", "Url": url, "PicUrl": "https://x/y.png",
                   "MsgId": msg_id or next(self._msg_ids), "AgentID": self.agent_id}
        return message_xml(fields)

    def event(self, sender: str, event: str, *, create_time: int | None = None, **extra: Any) -> str:
        fields = self._base(sender, "event", create_time)
        fields |= {"Event": event, "AgentID": self.agent_id} | extra
        return message_xml(fields)

    def card_event(self, sender: str, task_id: str, key: str, response_code: str, *,
                   create_time: int | None = None) -> str:
        return self.event(sender, "template_card_event", create_time=create_time, EventKey=key, TaskId=task_id,
                          CardType="button_interaction", ResponseCode=response_code)

    def raw_type(self, sender: str, msg_type: str, **extra: Any) -> str:
        fields = self._base(sender, msg_type, None) | {"MsgId": next(self._msg_ids), "AgentID": self.agent_id}
        return message_xml(fields | extra)

    # ----------------------------------------------------------------- envelopes

    def envelope(
        self,
        inner: str | bytes,
        *,
        timestamp: str = "1764468000",
        nonce: str | None = None,
        agent_id: int | None = None,
        to_user: str | None = None,
        bad_signature: bool = False,
    ) -> Signed:
        """Encrypt `inner`, sign it and wrap it like WeCom's POST."""
        nonce = nonce or str(secrets.randbelow(10**9))
        encrypted = self.crypto.encrypt(inner)
        sig = signature(self.token, timestamp, nonce, encrypted)
        if bad_signature:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        body = (
            f"<xml><ToUserName>{_cdata(to_user or self.corp_id)}</ToUserName>"
            f"<Encrypt>{_cdata(encrypted)}</Encrypt>"
            f"<AgentID>{_cdata(str(agent_id if agent_id is not None else self.agent_id))}</AgentID></xml>"
        )
        return Signed(f"msg_signature={sig}&timestamp={timestamp}&nonce={nonce}", body.encode("utf-8"))

    def sign_raw(self, body: bytes, encrypted_for_signature: str, *, timestamp: str = "1764468000",
                 nonce: str = "1") -> Signed:
        """Sign a hand-made body (for hostile-input tests)."""
        sig = signature(self.token, timestamp, nonce, encrypted_for_signature)
        return Signed(f"msg_signature={sig}&timestamp={timestamp}&nonce={nonce}", body)

    def verification_query(self, echo: str, *, timestamp: str = "1764468000", nonce: str = "42") -> str:
        encrypted = self.crypto.encrypt(echo)
        sig = signature(self.token, timestamp, nonce, encrypted)
        return f"msg_signature={sig}&timestamp={timestamp}&nonce={nonce}&echostr={quote(encrypted, safe='')}"
