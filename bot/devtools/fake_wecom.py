"""A fake WeCom server API (qyapi.weixin.qq.com/cgi-bin/...) on 127.0.0.1, for tests through real HTTP.

Built from the official docs (发送应用消息 90236, 更新模版卡片消息 94888, 获取access_token 91039,
获取部门列表, 获取部门成员详情, 获取临时素材) and FACTS.md:

* gettoken checks corpid (40013) and corpsecret (40001); a token lives `token_ttl_s` (7200) by the fake's
  clock; asking again while it is valid returns the same token with its remaining lifetime.
* Calls check the token: missing 41001, unknown 40014, expired 42001 (`expire_tokens()` expires them
  early, as WeCom may; `revoke_tokens()` makes them unknown).
* message/send validates agentid (40056), msgtype (40008), recipients (81013 when none is valid, once a
  directory is set), content (44004 empty); truncates text/markdown past 2048 bytes like WeCom;
  implements `enable_duplicate_check`/`duplicate_check_interval` (the same request JSON within the
  interval, compared byte for byte, is answered ok with the first msgid but not delivered again; the
  docs do not say whether a card's response_code is repeated, so it is not); and the silent drop:
  past 30 messages a minute or 1000 an hour to one member the answer is still errcode 0 but nothing is
  delivered (recorded in `dropped()`). Interactive template cards need a unique task_id (42014) and
  return a response_code (also on the delivered `Message`).
* message/update_template_card: response_code single-use and valid `response_code_ttl` (24 h; the docs
  say 24 h on one page and 72 h on another: the fake takes the stricter). The docs give no errcode
  for a used or expired code; the fake answers 40035 (不合法的参数).
* department/list, user/list (fed by `set_directory`).
* media/get (获取临时素材 90254, `add_media`): like the docs' example answer — 200 with the file's
  Content-Type, `Content-disposition: attachment; filename="MEDIA_ID.jpg"` (the uploader's name for a
  file; a non-ASCII name also as RFC 5987 `filename*`, which the docs do not show), Cache-Control and
  Content-Length (or chunked, no length, with `chunked=True`); errors as JSON: 40007 for an unknown
  media_id or one older than 3 days. `add_media` refuses what WeCom never issues (素材管理 概述
  91054): 5 bytes or less, or over the type's limit — image 10 MB, voice 2 MB, video 10 MB, file 20 MB.
  (830002, "too large, download it with Range", only comes from `script`.)

Fault injection: `script(endpoint, [...])` queues answers that replace the next calls' processing: a
dict is sent as the JSON answer; a `Fault` drops the connection, answers HTTP 502, hangs, answers a
non-JSON page, or delivers and then drops the connection (the "did it arrive?" case).

Observation: `requests()`, `gettoken_calls`, `delivered(userid)`, `dropped(userid)`, `duplicates`,
`card_updates`, and `await wait_delivered(n)` (event-based, no polling).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
import json
import secrets
import urllib.parse
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from aiohttp import web

from bot.clock import Clock

TEXT_MAX_BYTES = 2048
PER_MEMBER_PER_MINUTE = 30
PER_MEMBER_PER_HOUR = 1000
DEFAULT_DUPLICATE_INTERVAL_S = 1800
MAX_DUPLICATE_INTERVAL_S = 14400
INTERACTIVE_CARDS = frozenset({"button_interaction", "vote_interaction", "multiple_interaction"})
MSGTYPES = frozenset(
    {"text", "image", "voice", "video", "file", "textcard", "news", "mpnews", "markdown",
     "miniprogram_notice", "template_card"}
)  # fmt: skip
MEDIA_TTL = timedelta(days=3)
MIB = 1024 * 1024
MEDIA_MIN_BYTES = 5  # "所有文件size必须大于5个字节"
MEDIA_MAX_BYTES = {"image": 10 * MIB, "voice": 2 * MIB, "video": 10 * MIB, "file": 20 * MIB}
MEDIA_EXTENSIONS = {"image/jpeg": ".jpg", "image/jpg": ".jpg", "image/png": ".png", "voice/amr": ".amr",
                    "audio/amr": ".amr", "video/mp4": ".mp4"}  # fmt: skip


class Fault(Enum):
    """A scripted transport failure instead of a JSON answer."""

    DROP = "drop"  # close the connection without answering; nothing processed
    HTTP_502 = "http_502"  # a gateway error page; nothing processed
    HANG = "hang"  # never answer (until the fake closes): the client's timeout fires
    NOT_JSON = "not_json"  # HTTP 200 with an HTML page; nothing processed
    DELIVER_THEN_DROP = "deliver_then_drop"  # process normally (deliver), then drop the connection
    TRUNCATE = "truncate"  # process normally, send the headers and half the body, then drop the connection


Scripted = dict[str, Any] | Fault


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake received (every endpoint, scripted or not)."""

    endpoint: str  # e.g. "message/send"
    method: str
    query: dict[str, str]
    body: bytes
    at: datetime

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Message:
    """A message as one member would see it (after truncation), or as it was dropped."""

    userid: str
    msgtype: str
    msgid: str
    at: datetime
    body: dict[str, Any]
    response_code: str | None = None  # an interactive template card's, as message/send answered it

    @property
    def content(self) -> str | None:
        """text/markdown content as shown (truncated to 2048 bytes like WeCom)."""
        inner = self.body.get(self.msgtype)
        if isinstance(inner, dict) and isinstance(inner.get("content"), str):
            return _truncate(inner["content"], TEXT_MAX_BYTES)
        return None


@dataclass
class _Token:
    expires_at: datetime


@dataclass
class _ResponseCode:
    userids: tuple[str, ...]
    issued_at: datetime
    used: bool = False


@dataclass
class _Sent:
    msgid: str
    at: datetime


@dataclass(frozen=True)
class _Media:
    data: bytes
    content_type: str
    filename: str
    added_at: datetime
    chunked: bool


@dataclass
class _Waiter:
    ready: Callable[[], bool]
    event: asyncio.Event = field(default_factory=asyncio.Event)


class FakeWeCom:
    """The fake server. Start it with `running_fake_wecom(clock)`; point `api_base` at `fake.api_base`."""

    def __init__(
        self,
        clock: Clock,
        *,
        corp_id: str,
        secret: str,
        agent_id: int,
        token_ttl_s: int = 7200,
        response_code_ttl: timedelta = timedelta(hours=24),
    ) -> None:
        self.clock = clock
        self.corp_id = corp_id
        self.secret = secret
        self.agent_id = agent_id
        self.token_ttl_s = token_ttl_s
        self.response_code_ttl = response_code_ttl
        self.gettoken_calls = 0
        self.duplicates: list[Message] = []  # answered ok, not delivered again (duplicate check)
        self.card_updates: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._tokens: dict[str, _Token] = {}
        self._scripts: dict[str, deque[Scripted]] = defaultdict(deque)
        self._requests: list[RecordedRequest] = []
        self._delivered: dict[str, list[Message]] = defaultdict(list)
        self._dropped: dict[str, list[Message]] = defaultdict(list)
        self._delivery_times: dict[str, deque[datetime]] = defaultdict(deque)
        self._recent_bodies: dict[str, _Sent] = {}
        self._task_ids: set[str] = set()
        self._response_codes: dict[str, _ResponseCode] = {}
        self._departments: list[dict[str, Any]] = []
        self._users: list[dict[str, Any]] = []
        self._media: dict[str, _Media] = {}
        self._waiters: list[_Waiter] = []
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.api_base = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/cgi-bin/{endpoint:.+}", self._handle)
        # Short shutdown grace: a HANG handler is released by close() anyway.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.api_base = f"http://{host}:{port}"
        return self.api_base

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ control

    def script(self, endpoint: str, responses: Iterable[Scripted]) -> None:
        """Queue answers for the next calls to `endpoint` ("message/send", "gettoken", ...)."""
        self._scripts[endpoint].extend(responses)

    def expire_tokens(self) -> None:
        """Every issued token expires now (next use: 42001); the next gettoken issues a new one."""
        now = self.clock.now()
        for token in self._tokens.values():
            token.expires_at = min(token.expires_at, now)

    def revoke_tokens(self) -> None:
        """Forget every issued token (next use: 40014)."""
        self._tokens.clear()

    def set_directory(self, departments: list[dict[str, Any]], users: list[dict[str, Any]]) -> None:
        """Departments (id, name, parentid, order, department_leader) and users (userid, name,
        department, direct_leader, is_leader_in_dept, mobile, email, status). Once set, message/send
        reports unknown recipients (invaliduser, or 81013 when none is valid)."""
        self._departments = copy.deepcopy(departments)
        self._users = copy.deepcopy(users)

    def add_media(
        self,
        media_id: str,
        data: bytes,
        content_type: str = "image/jpeg",
        filename: str | None = None,
        *,
        media_type: str | None = None,
        chunked: bool = False,
    ) -> None:
        """Media a member sent, valid 3 days from now. `filename` defaults to the docs' "MEDIA_ID.jpg"
        shape; `media_type` (image, voice, video, file) defaults from the content type and sets the
        size limit; `chunked` answers without Content-Length."""
        kind = media_type or _media_type(content_type)
        if not MEDIA_MIN_BYTES < len(data) <= MEDIA_MAX_BYTES[kind]:
            raise ValueError(f"WeCom keeps no {kind} of {len(data)} bytes (limit {MEDIA_MAX_BYTES[kind]})")
        name = filename if filename is not None else media_id + MEDIA_EXTENSIONS.get(content_type, "")
        self._media[media_id] = _Media(data, content_type, name, self.clock.now(), chunked)

    def issue_response_code(self, userids: Iterable[str]) -> str:
        """A response_code as a template_card_event callback carries it (one click)."""
        code = f"rc-{next(self._ids)}"
        self._response_codes[code] = _ResponseCode(tuple(userids), self.clock.now())
        return code

    # ------------------------------------------------------------------ observation

    def requests(self, endpoint: str | None = None) -> list[RecordedRequest]:
        return [r for r in self._requests if endpoint is None or r.endpoint == endpoint]

    def delivered(self, userid: str) -> list[Message]:
        return list(self._delivered.get(userid, ()))

    def dropped(self, userid: str) -> list[Message]:
        return list(self._dropped.get(userid, ()))

    def delivered_count(self, userid: str | None = None) -> int:
        if userid is not None:
            return len(self._delivered.get(userid, ()))
        return sum(len(v) for v in self._delivered.values())

    async def wait_delivered(self, n: int, *, userid: str | None = None, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Return once at least n messages were delivered (to `userid`, or in all); TimeoutError if not."""
        waiter = _Waiter(lambda: self.delivered_count(userid) >= n)
        if waiter.ready():
            return
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.event.wait(), timeout)
        finally:
            self._waiters.remove(waiter)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        endpoint = request.match_info["endpoint"]
        body = await request.read()
        now = self.clock.now()
        self._requests.append(RecordedRequest(endpoint, request.method, dict(request.query), body, now))
        queue = self._scripts.get(endpoint)
        deliver_then_drop = truncate = False
        if queue:
            scripted = queue.popleft()
            if isinstance(scripted, dict):
                return _json(scripted)
            if scripted is Fault.DROP:
                return _drop(request)
            if scripted is Fault.HTTP_502:
                return web.Response(status=502, text="<html>502 Bad Gateway</html>", content_type="text/html")
            if scripted is Fault.NOT_JSON:
                return web.Response(text="<html>upstream error</html>", content_type="text/html")
            if scripted is Fault.HANG:
                await self._closing.wait()
                return _drop(request)
            deliver_then_drop = scripted is Fault.DELIVER_THEN_DROP
            truncate = scripted is Fault.TRUNCATE
        handler = {
            "gettoken": self._gettoken,
            "message/send": self._message_send,
            "message/update_template_card": self._update_card,
            "department/list": self._department_list,
            "user/list": self._user_list,
        }.get(endpoint)
        response: web.StreamResponse
        if endpoint == "media/get":
            response = await self._media_get(request, now, stream=not truncate)
        elif handler is None:
            return web.Response(status=404, text="not found")
        else:
            response = _json(handler(request.query, body, now))
        if truncate and isinstance(response, web.Response):
            return await _truncated(request, response)
        return _drop(request) if deliver_then_drop else response

    # ------------------------------------------------------------------ endpoints

    def _gettoken(self, query: Any, _body: bytes, now: datetime) -> dict[str, Any]:
        self.gettoken_calls += 1
        corpid, secret = query.get("corpid"), query.get("corpsecret")
        if not corpid:
            return _err(41002, "corpid missing")
        if corpid != self.corp_id:
            return _err(40013, "invalid corpid")
        if not secret:
            return _err(41004, "corpsecret missing")
        if secret != self.secret:
            return _err(40001, "invalid credential, access_token is invalid or not latest")
        for value, token in self._tokens.items():
            if token.expires_at > now:
                remaining = int((token.expires_at - now).total_seconds())
                return {"errcode": 0, "errmsg": "ok", "access_token": value, "expires_in": remaining}
        value = f"tok-{next(self._ids)}-{secrets.token_hex(8)}"
        self._tokens[value] = _Token(now + timedelta(seconds=self.token_ttl_s))
        return {"errcode": 0, "errmsg": "ok", "access_token": value, "expires_in": self.token_ttl_s}

    def _check_token(self, query: Any, now: datetime) -> dict[str, Any] | None:
        value = query.get("access_token")
        if not value:
            return _err(41001, "access_token missing")
        token = self._tokens.get(value)
        if token is None:
            return _err(40014, "invalid access_token")
        if token.expires_at <= now:
            return _err(42001, "access_token expired")
        return None

    def _app_body(self, query: Any, raw: bytes, now: datetime) -> dict[str, Any]:
        """The JSON body of an app call (token valid, JSON object, this agent), or the error answer.

        Neither message/send nor update_template_card bodies have an `errcode` key of their own."""
        if (refused := self._check_token(query, now)) is not None:
            return refused
        body = _json_object(raw)
        if body is None or "errcode" in body:
            return _err(47001, "data format error")
        if str(body.get("agentid", "")) != str(self.agent_id):
            return _err(40056, "invalid agentid")
        return body

    def _message_send(self, query: Any, raw: bytes, now: datetime) -> dict[str, Any]:
        body = self._app_body(query, raw, now)
        if "errcode" in body:
            return body
        msgtype = body.get("msgtype")
        if msgtype not in MSGTYPES or not isinstance(body.get(msgtype), dict):
            return _err(40008, "invalid message type")
        if msgtype in {"text", "markdown"} and not body[msgtype].get("content"):
            return _err(44004, "empty content")
        recipients, invalid = self._recipients(str(body.get("touser", "")))
        if not recipients:
            return _err(81013, "user & party & tag all invalid")
        extra: dict[str, Any] = {"invaliduser": "|".join(invalid)} if invalid else {}

        # Duplicate check first: a resend of a request that got through must not fail on what the
        # first one consumed (e.g. its card task_id).
        if body.get("enable_duplicate_check") == 1:
            interval = int(body.get("duplicate_check_interval") or DEFAULT_DUPLICATE_INTERVAL_S)
            interval = min(interval, MAX_DUPLICATE_INTERVAL_S)
            key = hashlib.sha256(raw).hexdigest()
            seen = self._recent_bodies.get(key)
            if seen is not None and now - seen.at < timedelta(seconds=interval):
                for userid in recipients:
                    self.duplicates.append(Message(userid, msgtype, seen.msgid, now, body))
                return {"errcode": 0, "errmsg": "ok", "msgid": seen.msgid, **extra}

        code: str | None = None
        if msgtype == "template_card":
            card = body["template_card"]
            card_type = card.get("card_type")
            if not card_type:
                return _err(40035, "card_type missing")
            if card_type in INTERACTIVE_CARDS:
                task_id = card.get("task_id")
                if not task_id:
                    return _err(40035, "task_id missing")
                if task_id in self._task_ids:
                    return _err(42014, "task_id exist")
                self._task_ids.add(task_id)
                code = self.issue_response_code(recipients)
                extra["response_code"] = code

        msgid = f"msg-{next(self._ids)}"
        if body.get("enable_duplicate_check") == 1:
            self._recent_bodies[hashlib.sha256(raw).hexdigest()] = _Sent(msgid, now)
        for userid in recipients:
            message = Message(userid, msgtype, msgid, now, body, code)
            if self._over_member_limit(userid, now):
                self._dropped[userid].append(message)  # accepted, silently not delivered
            else:
                self._delivered[userid].append(message)
                self._delivery_times[userid].append(now)
        self._notify()
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid, **extra}

    def _recipients(self, touser: str) -> tuple[list[str], list[str]]:
        names = [u for u in touser.split("|") if u]
        if not self._users:
            return names, []
        known = {u["userid"].lower(): u["userid"] for u in self._users}
        if names == ["@all"]:
            return list(known.values()), []
        valid = [known[n.lower()] for n in names if n.lower() in known]
        invalid = [n.lower() for n in names if n.lower() not in known]
        return valid, invalid

    def _over_member_limit(self, userid: str, now: datetime) -> bool:
        times = self._delivery_times[userid]
        while times and times[0] <= now - timedelta(hours=1):
            times.popleft()
        last_minute = sum(1 for t in times if t > now - timedelta(minutes=1))
        return last_minute >= PER_MEMBER_PER_MINUTE or len(times) >= PER_MEMBER_PER_HOUR

    def _update_card(self, query: Any, raw: bytes, now: datetime) -> dict[str, Any]:
        body = self._app_body(query, raw, now)
        if "errcode" in body:
            return body
        code = self._response_codes.get(str(body.get("response_code", "")))
        if code is None:
            return _err(40035, "invalid response_code")
        if code.used:
            return _err(40035, "response_code has been used")
        if now - code.issued_at > self.response_code_ttl:
            return _err(40035, "response_code expired")
        if not isinstance(body.get("button"), dict) and not isinstance(body.get("template_card"), dict):
            return _err(40035, "button or template_card required")
        code.used = True
        self.card_updates.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    def _department_list(self, query: Any, _raw: bytes, now: datetime) -> dict[str, Any]:
        if (refused := self._check_token(query, now)) is not None:
            return refused
        if "id" not in query or query["id"] == "":
            return {"errcode": 0, "errmsg": "ok", "department": copy.deepcopy(self._departments)}
        try:
            root = int(query["id"])
        except ValueError:
            return _err(60123, "invalid party id")
        ids = self._subtree(root)
        if not ids:
            return _err(60123, "invalid party id")
        found = [d for d in self._departments if d["id"] in ids]
        return {"errcode": 0, "errmsg": "ok", "department": copy.deepcopy(found)}

    def _user_list(self, query: Any, _raw: bytes, now: datetime) -> dict[str, Any]:
        if (refused := self._check_token(query, now)) is not None:
            return refused
        try:
            dept = int(query.get("department_id", ""))
        except ValueError:
            return _err(60123, "invalid party id")
        ids = self._subtree(dept) if query.get("fetch_child") == "1" else {dept}
        if not any(d["id"] == dept for d in self._departments):
            return _err(60123, "invalid party id")
        users = [u for u in self._users if set(u.get("department", ())) & ids]
        return {"errcode": 0, "errmsg": "ok", "userlist": copy.deepcopy(users)}

    def _subtree(self, root: int) -> set[int]:
        if not any(d["id"] == root for d in self._departments):
            return set()
        ids, frontier = {root}, [root]
        while frontier:
            parent = frontier.pop()
            for d in self._departments:
                if d.get("parentid") == parent and d["id"] not in ids:
                    ids.add(d["id"])
                    frontier.append(d["id"])
        return ids

    async def _media_get(self, request: web.Request, now: datetime, *, stream: bool) -> web.StreamResponse:
        if (refused := self._check_token(request.query, now)) is not None:
            return _json(refused)
        media = self._media.get(request.query.get("media_id", ""))
        if media is None or now - media.added_at > MEDIA_TTL:
            return _json(_err(40007, "invalid media_id"))
        headers = {
            "Content-Disposition": _content_disposition(media.filename),
            "Cache-Control": "no-cache, must-revalidate",
        }
        if not (media.chunked and stream):
            return web.Response(body=media.data, content_type=media.content_type, headers=headers)
        response = web.StreamResponse(headers={**headers, "Content-Type": media.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(media.data), 64 * 1024):
            await response.write(media.data[start : start + 64 * 1024])
        await response.write_eof()
        return response

    def _notify(self) -> None:
        for waiter in self._waiters:
            if waiter.ready():
                waiter.event.set()


@asynccontextmanager
async def running_fake_wecom(clock: Clock, *, corp_id: str, secret: str, agent_id: int,
                             **kwargs: Any) -> AsyncIterator[FakeWeCom]:
    """Start a fake on a random port of 127.0.0.1 for the length of the block."""
    fake = FakeWeCom(clock, corp_id=corp_id, secret=secret, agent_id=agent_id, **kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """A JSON object body, or None (WeCom answers 47001 data format error)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _err(errcode: int, errmsg: str) -> dict[str, Any]:
    return {"errcode": errcode, "errmsg": errmsg}


def _json(data: dict[str, Any]) -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
        charset="utf-8",
    )


def _drop(request: web.Request) -> web.Response:
    """Abort the TCP connection: the client sees a disconnect, never an answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)


async def _truncated(request: web.Request, response: web.Response) -> web.StreamResponse:
    """Send `response`'s status and headers (its full Content-Length) but half its body, then drop the
    connection: the client sees a body cut short."""
    body = bytes(response.body) if isinstance(response.body, bytes | bytearray) else b""
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    if request.transport is not None:
        request.transport.abort()
    return stream


def _media_type(content_type: str) -> str:
    """The upload type WeCom files media under, for its size limit."""
    major = content_type.split("/", 1)[0].lower()
    return {"image": "image", "voice": "voice", "audio": "voice", "video": "video"}.get(major, "file")


def _content_disposition(filename: str) -> str:
    """`attachment; filename="..."` as in the docs; a non-ASCII name also as RFC 5987 filename*."""
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    if quoted.isascii():
        return f'attachment; filename="{quoted}"'
    fallback = quoted.encode("ascii", "replace").decode("ascii")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"


def _truncate(text: str, max_bytes: int) -> str:
    return text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
