"""GET/POST /wecom/callback: verify, decrypt, store in the inbox, answer — then process in a task.

Order on POST (each step rejects with a 4xx and no side effect): size cap (413) → DTD/entity
screen (400) → envelope parse (400) → signature, constant time (403) → decrypt (400) and receiveid
(403) → AgentID (403) → message parse (400) → inbox commit (503 if the database fails, so WeCom
retries) → 200 with an empty body (no passive reply).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import unquote

from aiohttp import web

from bot.channels.base import IncomingMessage
from bot.channels.wecom.crypto import CryptoError, ReceiverError, SignatureError, WeComCrypto
from bot.channels.wecom.parser import XmlError, parse_flat, reject_declarations, to_incoming
from bot.clock import Clock
from bot.config import WeComSettings
from bot.metrics import Metrics
from store.repos.inbox import InboxWriter

log = logging.getLogger(__name__)

def parse_query(query_string: str) -> dict[str, str]:
    """URL-decode the query exactly once, keeping '+' (base64 echostr) as it is."""
    out: dict[str, str] = {}
    for part in query_string.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        out.setdefault(unquote(key), unquote(value))
    return out


class WeComCallback:
    """The aiohttp handlers for one WeCom self-built app."""

    def __init__(
        self,
        settings: WeComSettings,
        writer: InboxWriter,
        metrics: Metrics,
        on_stored: Callable[[int, str, str], None],
        clock: Clock,
        max_body_bytes: int = 65536,
    ) -> None:
        self._settings = settings
        self._crypto = WeComCrypto(settings.token, settings.encoding_aes_key, settings.corp_id)
        self._writer = writer
        self._metrics = metrics
        self._on_stored = on_stored
        self._clock = clock
        self._max_body = max_body_bytes

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/wecom/callback", self.verify_url), web.post("/wecom/callback", self.receive)]

    def _reject(self, status: int, reason: str) -> web.Response:
        self._metrics.inc("salesbot_inbound_rejected_total", channel="wecom", reason=reason)
        log.info("wecom callback rejected: %s", reason)
        return web.Response(status=status, text=reason)

    @staticmethod
    def _signed(query: dict[str, str]) -> tuple[str, str, str] | None:
        sig, ts, nonce = query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
        if not (sig and ts and nonce) or len(sig) > 64 or len(ts) > 32 or len(nonce) > 64:
            return None
        return sig, ts, nonce

    async def verify_url(self, request: web.Request) -> web.Response:
        """URL verification: answer the bare decrypted echostr (no quotes, newline or BOM)."""
        query = parse_query(request.rel_url.raw_query_string)
        signed, echostr = self._signed(query), query.get("echostr", "")
        if signed is None or not echostr or len(echostr) > 4096:
            return self._reject(400, "missing parameters")
        try:
            self._crypto.verify(*signed, echostr)
        except SignatureError:
            return self._reject(403, "bad signature")
        try:
            plain = self._crypto.decrypt(echostr)
        except ReceiverError:
            return self._reject(403, "wrong receiveid")
        except CryptoError:
            return self._reject(400, "bad echostr")
        return web.Response(body=plain.encode("utf-8"), content_type="text/plain")

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The whole body (it may arrive in many reads, or chunked), or None once it passes the cap."""
        if request.content_length is not None and request.content_length > self._max_body:
            return None
        parts: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(16384):
            size += len(chunk)
            if size > self._max_body:
                return None
            parts.append(chunk)
        return b"".join(parts)

    async def receive(self, request: web.Request) -> web.Response:
        query = parse_query(request.rel_url.raw_query_string)
        signed = self._signed(query)
        body = await self._read_body(request)
        if body is None:
            return self._reject(413, "body too large")
        if signed is None:
            return self._reject(400, "missing parameters")
        try:
            reject_declarations(body)
            envelope = parse_flat(body)
        except XmlError as exc:
            return self._reject(400, str(exc))
        encrypted = envelope.get("Encrypt", "")
        if not encrypted:
            return self._reject(400, "Encrypt missing")
        try:
            self._crypto.verify(*signed, encrypted)
        except SignatureError:
            return self._reject(403, "bad signature")
        if envelope.get("ToUserName") not in (None, self._settings.corp_id):
            return self._reject(403, "wrong ToUserName")
        try:
            plain = self._crypto.decrypt(encrypted)
        except ReceiverError:
            return self._reject(403, "wrong receiveid")
        except CryptoError as exc:
            return self._reject(400, str(exc))
        try:
            fields = parse_flat(plain)
            message = to_incoming(fields)
        except XmlError as exc:
            return self._reject(400, str(exc))
        agents = {v.strip() for v in (fields.get("AgentID"), envelope.get("AgentID")) if v}
        if agents != {str(self._settings.agent_id)}:
            return self._reject(403, "wrong AgentID")
        return await self._store(message)

    async def _store(self, message: IncomingMessage) -> web.Response:
        try:
            stored = await self._writer.store(message, self._clock.now())
        except Exception:
            log.exception("inbox write failed; answering 503 so WeCom retries")
            return web.Response(status=503, text="try again")
        if not stored.new:
            self._metrics.inc("salesbot_inbound_duplicates_total", channel="wecom")
            return web.Response(status=200, text="")
        self._metrics.inc("salesbot_inbound_total", channel="wecom", type=message.event or message.msg_type)
        assert stored.inbox_id is not None
        self._on_stored(stored.inbox_id, message.channel, message.sender)
        return web.Response(status=200, text="")
