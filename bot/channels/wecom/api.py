"""Async client for the WeCom server API (qyapi): token cache, message send, card update, directory, media.

Built on the app's aiohttp session (never wechatpy's blocking `requests` client). Two kinds of failure
are kept apart on purpose, because the outbox sender treats them differently:

* the platform answered with JSON -> `ApiResult` (errcode 0 or not), returned, never raised;
* no usable answer (connection error, timeout, HTTP status other than 200, body not JSON) ->
  `ApiNetworkError`, raised. The request may or may not have reached WeCom.

The access_token is fetched with `gettoken`, cached for `expires_in - token_refresh_margin_s` (time from
the injected clock) and refreshed under one lock, so any number of concurrent callers cause exactly one
`gettoken`. When a call fails with 40014/42001/40001 the token is refreshed once (only if the failing
token is still the cached one, so a burst of failures refreshes once) and the call is resent once.

Neither the corp secret nor an access_token is ever logged or put into an exception message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp

from bot.clock import Clock
from bot.config import WeComSettings
from bot.metrics import Metrics

log = logging.getLogger(__name__)

# "不合法的access_token", "access_token已过期", "不合法的secret或access_token无效".
TOKEN_ERRCODES: Final = frozenset({40014, 42001, 40001})
# Endpoints, relative to {api_base}/cgi-bin/.
GETTOKEN: Final = "gettoken"
MESSAGE_SEND: Final = "message/send"
UPDATE_TEMPLATE_CARD: Final = "message/update_template_card"
DEPARTMENT_LIST: Final = "department/list"
USER_LIST: Final = "user/list"
MEDIA_GET: Final = "media/get"
# media/get: an error answer is a small JSON object; files are read in chunks of this size.
ERROR_BODY_MAX_BYTES: Final = 64 * 1024
READ_CHUNK_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class ApiResult:
    """The platform's JSON answer: errcode 0 is success; `data` is the whole decoded body."""

    errcode: int
    errmsg: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.errcode == 0


class WeComApiError(Exception):
    """The platform answered with a non-zero errcode where a value was required (gettoken, media/get)."""

    def __init__(self, endpoint: str, result: ApiResult) -> None:
        super().__init__(f"{endpoint}: errcode {result.errcode} ({result.errmsg})")
        self.endpoint = endpoint
        self.result = result


class ApiTokenError(WeComApiError):
    """gettoken failed (bad corp id or secret, rate limit, system busy): no call could be made."""


class ApiNetworkError(Exception):
    """No usable answer: connection error, timeout, HTTP status other than 200, or a body that is not JSON.

    The request may have reached WeCom; a resend must therefore be the same request (duplicate check).
    """

    def __init__(self, endpoint: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
        self.status = status


class MediaTooLargeError(Exception):
    """media/get: the body is larger than the caller's limit; it was not read whole (and not kept)."""

    def __init__(self, endpoint: str, size: int, max_bytes: int, *, declared: bool) -> None:
        how = f"Content-Length {size}" if declared else f"more than {max_bytes} bytes received"
        super().__init__(f"{endpoint}: body too large ({how}; the limit is {max_bytes} bytes), refused")
        self.endpoint = endpoint
        self.size = size
        self.max_bytes = max_bytes
        self.declared = declared


@dataclass(frozen=True)
class Media:
    """A downloaded media/get file. `file_name` comes from the sender's side (Content-Disposition):
    untrusted, for display only, never part of a path."""

    data: bytes
    content_type: str  # lower-case, parameters dropped ("image/jpeg"); "" when WeCom sent none
    file_name: str | None


@dataclass(frozen=True)
class _Raw:
    status: int
    content_type: str
    body: bytes


@dataclass
class _CachedToken:
    value: str
    refresh_at: datetime  # when to fetch a new one (early, by the margin)


def encode_body(body: dict[str, Any]) -> bytes:
    """Canonical JSON bytes: same dict content -> same bytes, so WeCom's duplicate check sees a resend
    of one outbox row as the same request whatever key order the database gave back."""
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


class WeComClient:
    """One per app (built in create_app / the CLI) around the shared aiohttp session."""

    def __init__(
        self, session: aiohttp.ClientSession, settings: WeComSettings, clock: Clock, metrics: Metrics
    ) -> None:
        self._session = session
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._base = settings.api_base.rstrip("/") + "/cgi-bin/"
        self._timeout = aiohttp.ClientTimeout(total=settings.request_timeout_s)
        self._token: _CachedToken | None = None
        self._token_lock = asyncio.Lock()
        self._fetches = 0  # finished gettoken attempts: tells a queued caller whether one ran meanwhile
        self._fetch_error: ApiTokenError | ApiNetworkError | None = None

    # ------------------------------------------------------------------ token

    async def get_token(self) -> str:
        """The cached access_token, fetched (once, whatever the concurrency) when missing or due."""
        if (fresh := self._fresh_token()) is not None:
            return fresh
        return await self._fetch_once(self._fetches, failed=None)

    async def _refresh_after_failure(self, failed: str) -> str:
        """Replace the token a call was refused with, unless someone already did (no stampede)."""
        return await self._fetch_once(self._fetches, failed=failed)

    def _fresh_token(self, *, unless: str | None = None) -> str | None:
        cached = self._token
        if cached is None or cached.value == unless or self._clock.now() >= cached.refresh_at:
            return None
        return cached.value

    async def _fetch_once(self, seen: int, *, failed: str | None) -> str:
        """Fetch under the one lock. A caller that queued behind a fetch (the fetch counter moved
        since it looked) takes that fetch's outcome, token or error, instead of fetching again:
        twenty callers during an outage cost one gettoken and one timeout, not twenty in a row."""
        async with self._token_lock:
            if (fresh := self._fresh_token(unless=failed)) is not None:
                return fresh
            if self._fetches != seen and self._fetch_error is not None:
                raise _copy_error(self._fetch_error)
            if failed is not None and self._token is not None and self._token.value == failed:
                self._token = None  # refused by the platform: never hand it out again
            error: ApiTokenError | ApiNetworkError | None = None
            try:
                token = await self._fetch_token()
            except (ApiTokenError, ApiNetworkError) as exc:
                error = exc
                raise
            finally:
                # Counted when done, whatever the end (a cancelled fetch leaves no error to share, so
                # the callers queued behind it fetch for themselves).
                self._fetch_error = error
                self._fetches += 1
            return token

    async def _fetch_token(self) -> str:
        params = {"corpid": self._settings.corp_id, "corpsecret": self._settings.secret}
        raw = await self._http("GET", GETTOKEN, params, None)
        result = self._decode(GETTOKEN, raw)
        self._count(GETTOKEN, str(result.errcode))
        token = result.data.get("access_token")
        if not result.ok or not isinstance(token, str) or not token:
            log.error("wecom gettoken failed: errcode=%s errmsg=%s", result.errcode, result.errmsg)
            raise ApiTokenError(GETTOKEN, result)
        expires_in = int(result.data.get("expires_in") or 7200)
        now = self._clock.now()
        margin = self._settings.token_refresh_margin_s
        # WeCom hands back the same token when asked early, possibly with less lifetime left; a short
        # lifetime is then used to its end (a late 42001 triggers the one refresh) rather than
        # refetched in a loop.
        lifetime = expires_in - margin if expires_in > 2 * margin else expires_in
        self._token = _CachedToken(
            value=token,
            refresh_at=now + timedelta(seconds=max(lifetime, 1)),
        )
        log.info("wecom access_token fetched, valid for %ss", expires_in)
        return token

    # ------------------------------------------------------------------ endpoints

    async def send_message(self, body: dict[str, Any]) -> ApiResult:
        """POST message/send. The caller builds the body (touser, msgtype, agentid, duplicate check)."""
        return await self._call_json("POST", MESSAGE_SEND, body=encode_body(body))

    async def update_template_card(self, body: dict[str, Any]) -> ApiResult:
        """POST message/update_template_card (response_code is single-use)."""
        return await self._call_json("POST", UPDATE_TEMPLATE_CARD, body=encode_body(body))

    async def department_list(self, id: int | None = None) -> ApiResult:
        """GET department/list: `data["department"]` holds id, name, parentid, order, department_leader."""
        params = {} if id is None else {"id": str(id)}
        return await self._call_json("GET", DEPARTMENT_LIST, params=params)

    async def user_list(self, department_id: int, fetch_child: bool = False) -> ApiResult:
        """GET user/list: `data["userlist"]` holds userid, name, department, direct_leader,
        is_leader_in_dept, mobile, email, status (fields the app's visibility allows)."""
        params = {"department_id": str(department_id), "fetch_child": "1" if fetch_child else "0"}
        return await self._call_json("GET", USER_LIST, params=params)

    async def media_get(
        self, media_id: str, *, max_bytes: int | None = None, timeout_s: float | None = None
    ) -> Media:
        """GET media/get (获取临时素材): the file, its content type and the file name WeCom gives in
        Content-Disposition. A JSON body is an error (e.g. 40007: invalid or expired media_id, 830002:
        too large for one download) and raises WeComApiError; a transport failure (including a body cut
        short) raises ApiNetworkError; a body over `max_bytes` raises MediaTooLargeError, refused from
        its Content-Length before reading it, or as soon as the bytes read pass the limit."""
        token = await self.get_token()
        got = await self._media(token, media_id, max_bytes, timeout_s)
        if isinstance(got, ApiResult) and got.errcode in TOKEN_ERRCODES:
            token = await self._refresh_after_failure(token)
            got = await self._media(token, media_id, max_bytes, timeout_s)
        if isinstance(got, ApiResult):
            raise WeComApiError(MEDIA_GET, got)
        return got

    async def _media(
        self, token: str, media_id: str, max_bytes: int | None, timeout_s: float | None
    ) -> Media | ApiResult:
        timeout = self._timeout if timeout_s is None else aiohttp.ClientTimeout(total=timeout_s)
        params = {"media_id": media_id, "access_token": token}
        try:
            async with self._session.get(self._base + MEDIA_GET, params=params, timeout=timeout) as resp:
                if resp.status != 200:
                    self._count(MEDIA_GET, "network")
                    raise ApiNetworkError(MEDIA_GET, f"HTTP {resp.status}", status=resp.status)
                ctype = resp.headers.get("Content-Type", "")
                # An error answer is a small JSON object; a "JSON" body past this is not one.
                limit = ERROR_BODY_MAX_BYTES if "json" in ctype.lower() else max_bytes
                declared = resp.content_length
                if limit is not None and declared is not None and declared > limit:
                    resp.close()  # drop the connection instead of reading what is refused
                    raise self._too_large(declared, limit, declared=True)
                body = await self._read_capped(resp, limit)
                disposition = resp.content_disposition
                file_name = disposition.filename if disposition is not None else None
        except TimeoutError:
            self._count(MEDIA_GET, "network")
            raise ApiNetworkError(MEDIA_GET, "timeout") from None
        except aiohttp.ClientError as exc:
            self._count(MEDIA_GET, "network")  # a connection error, or a body cut short
            raise ApiNetworkError(MEDIA_GET, type(exc).__name__) from None
        raw = _Raw(200, ctype, body)
        if _is_json(raw):
            result = self._decode(MEDIA_GET, raw)
            self._count(MEDIA_GET, str(result.errcode))
            return result
        self._count(MEDIA_GET, "0")
        return Media(data=body, content_type=_mime_type(ctype), file_name=file_name)

    async def _read_capped(self, resp: aiohttp.ClientResponse, limit: int | None) -> bytes:
        """The whole body, read in chunks; past `limit` bytes the connection is dropped and
        MediaTooLargeError raised (a body without Content-Length is never read whole)."""
        data = bytearray()
        async for chunk in resp.content.iter_chunked(READ_CHUNK_BYTES):
            data += chunk
            if limit is not None and len(data) > limit:
                resp.close()
                raise self._too_large(len(data), limit, declared=False)
        return bytes(data)

    def _too_large(self, size: int, limit: int, *, declared: bool) -> MediaTooLargeError:
        self._count(MEDIA_GET, "too_large")
        return MediaTooLargeError(MEDIA_GET, size, limit, declared=declared)

    # ------------------------------------------------------------------ plumbing

    async def _call_json(
        self, method: str, endpoint: str, *, params: dict[str, str] | None = None, body: bytes | None = None
    ) -> ApiResult:
        query = dict(params or {})
        token = await self.get_token()
        result = self._decode(
            endpoint, await self._http(method, endpoint, {**query, "access_token": token}, body)
        )
        if result.errcode in TOKEN_ERRCODES:
            # Refused before doing anything, so resending is safe; once only, so a token that the
            # platform keeps refusing cannot loop.
            self._count(endpoint, str(result.errcode))
            log.warning("wecom %s: errcode %s, refreshing the access_token once", endpoint, result.errcode)
            token = await self._refresh_after_failure(token)
            raw = await self._http(method, endpoint, {**query, "access_token": token}, body)
            result = self._decode(endpoint, raw)
        self._count(endpoint, str(result.errcode))
        return result

    async def _http(self, method: str, endpoint: str, params: dict[str, str], body: bytes | None) -> _Raw:
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else None
        try:
            async with self._session.request(
                method,
                self._base + endpoint,
                params=params,
                data=body,
                headers=headers,
                timeout=self._timeout,
            ) as resp:
                data = await resp.read()
                raw = _Raw(resp.status, resp.headers.get("Content-Type", ""), data)
        except TimeoutError:
            self._count(endpoint, "network")
            raise ApiNetworkError(endpoint, "timeout") from None
        except aiohttp.ClientError as exc:
            # str(exc) of some aiohttp errors carries the URL, hence the access_token or the secret:
            # keep only the class name and do not chain the original exception.
            self._count(endpoint, "network")
            raise ApiNetworkError(endpoint, type(exc).__name__) from None
        if raw.status != 200:
            self._count(endpoint, "network")
            raise ApiNetworkError(endpoint, f"HTTP {raw.status}", status=raw.status)
        return raw

    def _decode(self, endpoint: str, raw: _Raw) -> ApiResult:
        try:
            data = json.loads(raw.body)
        except (UnicodeDecodeError, ValueError):
            self._count(endpoint, "network")
            raise ApiNetworkError(endpoint, "answer is not JSON", status=raw.status) from None
        if not isinstance(data, dict):
            self._count(endpoint, "network")
            raise ApiNetworkError(endpoint, "answer is not a JSON object", status=raw.status)
        try:
            errcode = int(data.get("errcode", 0))
        except (TypeError, ValueError):
            self._count(endpoint, "network")
            raise ApiNetworkError(endpoint, "errcode is not a number", status=raw.status) from None
        return ApiResult(errcode=errcode, errmsg=str(data.get("errmsg", "")), data=data)

    def _count(self, endpoint: str, outcome: str) -> None:
        self._metrics.inc("salesbot_wecom_api_requests_total", endpoint=endpoint, outcome=outcome)


def _copy_error(exc: ApiTokenError | ApiNetworkError) -> ApiTokenError | ApiNetworkError:
    """A fresh exception with the same meaning (re-raising one instance in many tasks would pile up
    its traceback)."""
    if isinstance(exc, ApiTokenError):
        return ApiTokenError(exc.endpoint, exc.result)
    return ApiNetworkError(exc.endpoint, exc.reason, status=exc.status)


def _mime_type(content_type: str) -> str:
    """The bare media type: 'Image/JPEG; charset=x' -> 'image/jpeg'."""
    return content_type.split(";", 1)[0].strip().lower()


def _is_json(raw: _Raw) -> bool:
    """media/get answers errors as JSON (content type application/json or text/plain) and files as
    anything else; a body that starts with '{' under a text type is also read as an error."""
    ctype = raw.content_type.lower()
    if "json" in ctype:
        return True
    return ctype.startswith("text/") and raw.body.lstrip()[:1] == b"{"
