"""The authenticated JSON API under /api/v1/: upsert and read the data the importer knows.

    PUT|POST /api/v1/{kind}                 JSON array (or {"items": [...]}) -> import report
    GET      /api/v1/{kind}/{external_id}   the stored object, in the shape it is imported in
    GET      /api/v1/openapi.json           OpenAPI 3.1 (served without authentication: it holds
                                            no data, and clients need it to be set up)

It is a sub-application with its own middleware, so every answer under /api/v1/ (404 and 405
from the router included) is JSON, and nothing here touches the WeCom callback routes.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web
from sqlalchemy.exc import OperationalError

from bot.api.openapi import API_PREFIX, build_openapi
from bot.deps import DEPS, Deps
from store.importing import SPECS, get_spec, import_rows
from store.importing.export import fetch_item

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_ITEMS = 10_000
_READ_CHUNK = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiLimits:
    """Per-app limits, set by setup_api."""

    def __init__(self, max_body_bytes: int, max_items: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_items = max_items


LIMITS = web.AppKey("api_limits", ApiLimits)


class ApiError(Exception):
    """An error answer: status, a message for {"error": ...}, optional headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def setup_api(
    app: web.Application,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_items: int = DEFAULT_MAX_ITEMS,
) -> None:
    """Mount the API at /api/v1/. It reads db, clock and settings from app[DEPS] at request time."""
    api = web.Application(middlewares=[json_errors])
    api[LIMITS] = ApiLimits(max_body_bytes, max_items)
    api.router.add_get("/openapi.json", openapi_document, name="openapi")
    api.router.add_put("/{kind}", upsert_items, name="upsert_put")
    api.router.add_post("/{kind}", upsert_items, name="upsert_post")
    api.router.add_get("/{kind}/{external_id}", get_item, name="get_item")
    app.add_subapp(API_PREFIX, api)


def _deps(request: web.Request) -> Deps:
    return request.config_dict[DEPS]


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error under /api/v1/ is {"error": ...}; an unexpected exception is logged, never leaked."""
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except ApiError as exc:
        status = exc.status
        return _json(exc.status, {"error": exc.message}, exc.headers)
    except web.HTTPException as exc:
        status = exc.status
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "www-authenticate"}}
        return _json(exc.status, {"error": exc.reason}, headers)
    except Exception:
        log.exception("API request failed: %s %s", request.method, request.path)
        return _json(500, {"error": "internal error"})
    finally:
        deps = request.config_dict.get(DEPS)
        if deps is not None:
            route = request.match_info.route.name or "unmatched"
            deps.metrics.inc("salesbot_api_requests_total", route=route, status=status)


def _authenticate(request: web.Request) -> None:
    """Bearer token from [api] token, compared in constant time (as bytes: any header text is safe)."""
    expected = _deps(request).settings.api.token
    if not expected:
        raise ApiError(503, "API disabled: [api] token is not configured")
    scheme, _, given = request.headers.get("Authorization", "").strip().partition(" ")
    challenge = 'Bearer realm="salesbot"'
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiError(401, "missing bearer token", {"WWW-Authenticate": challenge})
    if not secrets.compare_digest(
        given.strip().encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    ):
        raise ApiError(401, "invalid token", {"WWW-Authenticate": f'{challenge}, error="invalid_token"'})


def _kind(request: web.Request) -> str:
    kind = request.match_info["kind"]
    if kind not in SPECS:
        raise ApiError(404, f"unknown kind {kind[:64]!r} (known: {', '.join(SPECS)})")
    return kind


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (checked as it streams, not only by header)."""
    too_large = ApiError(413, f"request body over {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.content.iter_chunked(_READ_CHUNK):
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:64]!r}")
        result[key] = value
    return result


def parse_items(body: bytes, max_items: int) -> list[Any]:
    """A JSON array, or {"items": [...]}; numbers keep their exact decimal value. Raises ApiError."""
    try:
        data = json.loads(
            body.decode("utf-8-sig"),
            parse_float=Decimal,
            parse_constant=_no_constants,
            object_pairs_hook=_no_duplicate_keys,
        )
    except UnicodeDecodeError:
        raise ApiError(400, "body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"body is not valid JSON: {str(exc)[:200]}") from None
    if isinstance(data, dict) and set(data) == {"items"}:
        data = data["items"]
    if not isinstance(data, list):
        raise ApiError(400, 'expected a JSON array of objects, or {"items": [...]}')
    if len(data) > max_items:
        raise ApiError(413, f"{len(data)} items; at most {max_items} per request")
    return data


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "").strip().lower()
    if value in {"", "0", "false", "no"}:
        return False
    if value in {"1", "true", "yes"}:
        return True
    raise ApiError(400, f"query parameter {name}: expected true or false")


async def upsert_items(request: web.Request) -> web.Response:
    """PUT|POST /api/v1/{kind}: upsert by external_id; 200 with the report, 422 if nothing applied."""
    _authenticate(request)
    kind = _kind(request)
    dry_run = _flag(request, "dry_run")
    limits = request.app[LIMITS]
    items = parse_items(await _read_body(request, limits.max_body_bytes), limits.max_items)
    deps = _deps(request)
    try:
        report = await import_rows(
            deps.db,
            kind,
            enumerate(items),
            deps.clock.now(),
            stages=deps.settings.funnel.stages,
            dry_run=dry_run,
            source="api",
            actor_label="api",
        )
    except OperationalError:  # e.g. SQLite busy past its timeout: nothing was written, say so
        log.warning("API import of %s: database unavailable", kind, exc_info=True)
        raise ApiError(
            503, "database busy or unavailable; nothing was written, retry later", {"Retry-After": "5"}
        ) from None
    if report.applied and not dry_run and deps.views is not None:
        deps.views.invalidate()  # R20: a view must not show what was true before this import
    status = 422 if report.errors and report.applied == 0 else 200
    return _json(status, report.to_dict(position="index"))


async def get_item(request: web.Request) -> web.Response:
    """GET /api/v1/{kind}/{external_id}: the stored object, or 404."""
    _authenticate(request)
    kind = _kind(request)
    external_id = request.match_info["external_id"]
    spec = get_spec(kind)
    limit = spec.column("external_id").max_length or 64
    item = None
    if len(external_id) <= limit:
        async with _deps(request).db.sessions() as session:
            item = await fetch_item(session, kind, external_id)
    if item is None:
        raise ApiError(404, f"no {kind} with external_id {external_id[:64]!r}")
    return _json(200, item)


async def openapi_document(request: web.Request) -> web.Response:
    """GET /api/v1/openapi.json: generated from the import spec tables and the configured stages."""
    limits = request.app[LIMITS]
    document = build_openapi(
        _deps(request).settings.funnel.stages,
        max_items=limits.max_items,
        max_body_bytes=limits.max_body_bytes,
    )
    return _json(200, document)
