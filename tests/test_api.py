"""The JSON API (/api/v1/) through a real aiohttp server: auth, upsert, errors, limits, OpenAPI."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.api import setup_api
from bot.clock import SettableClock
from bot.config import ApiSettings
from bot.deps import DEPS, Deps
from store.db import Database
from store.importing import KINDS, import_csv
from store.models import AuditLog, Customer, User
from tests.conftest import API_TOKEN, make_settings

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
MAX_BODY = 64 * 1024

USERS: list[dict[str, Any]] = [
    {"external_id": "E001", "name": "周立新", "roles": ["manager"], "wecom_userid": "manager_hd",
     "team": "华东/华东一组", "manages": ["华东", "华东/华东一组"]},
    {"external_id": "E004", "name": "张三", "roles": "rep", "wecom_userid": "zhangsan",
     "team": "华东/华东一组", "superior": "E001", "active": True},
]  # fmt: skip
CUSTOMER: dict[str, Any] = {"external_id": "C001", "name": "华远科技有限公司", "aliases": ["华远", "华远科技"],
            "industry": "IT服务", "region": "华东", "owner": "E004"}  # fmt: skip


@pytest_asyncio.fixture
async def client(db: Database, clock: SettableClock, db_url: str) -> AsyncIterator[TestClient[Any, Any]]:
    app = web.Application()
    app[DEPS] = Deps(settings=make_settings(db_url), db=db, clock=clock)
    setup_api(app, max_body_bytes=MAX_BODY, max_items=500)
    async with TestClient(TestServer(app)) as c:
        yield c


async def put(client: TestClient[Any, Any], kind: str, body: Any, **kw: Any) -> tuple[int, Any]:
    resp = await client.put(f"/api/v1/{kind}", json=body, headers=AUTH, **kw)
    return resp.status, await resp.json()


async def count(db: Database, model: type[Any]) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


# ---------------------------------------------------------------- authentication


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789abcdef"},
        {"Authorization": f"Basic {API_TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {API_TOKEN}x"},
        {"Authorization": "Bearer 令牌令牌令牌"},
    ],
)
async def test_requests_without_a_good_token_get_401(
    client: TestClient[Any, Any], db: Database, headers: dict[str, str]
) -> None:
    for method, path in (("PUT", "/api/v1/users"), ("POST", "/api/v1/users"), ("GET", "/api/v1/users/E001")):
        resp = await client.request(method, path, json=USERS, headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in await resp.json()
    assert await count(db, User) == 0


async def test_unknown_kind_is_404_after_auth(client: TestClient[Any, Any]) -> None:
    resp = await client.put("/api/v1/widgets", json=[], headers=AUTH)
    assert resp.status == 404 and "users" in (await resp.json())["error"]
    assert (await client.put("/api/v1/widgets", json=[])).status == 401  # no hint without a token
    resp = await client.get("/api/v1/users/a/b", headers=AUTH)
    assert resp.status == 404 and "error" in await resp.json()  # router 404s are JSON too
    resp = await client.delete("/api/v1/users", headers=AUTH)
    assert resp.status == 405 and "error" in await resp.json()


async def test_disabled_without_a_configured_token(db: Database, clock: SettableClock, db_url: str) -> None:
    app = web.Application()
    # validate() refuses this in production configs; the API must still fail closed if it happens.
    settings = dataclasses.replace(make_settings(db_url), api=ApiSettings(token=""))
    app[DEPS] = Deps(settings=settings, db=db, clock=clock)
    setup_api(app)
    async with TestClient(TestServer(app)) as c:
        resp = await c.put("/api/v1/users", json=USERS, headers={"Authorization": "Bearer "})
        assert resp.status == 503
        assert (await c.get("/api/v1/openapi.json")).status == 200


# ---------------------------------------------------------------- upsert


async def test_upsert_twice_changes_nothing(client: TestClient[Any, Any], db: Database, clock: SettableClock) -> None:
    status, report = await put(client, "users", USERS)
    assert status == 200 and (report["created"], report["errors"]) == (2, [])
    assert report["org_units_created"] == 2  # 华东, 华东一组
    status, report = await put(client, "customers", {"items": [CUSTOMER]})
    assert status == 200 and report["created"] == 1

    async with db.sessions() as s:
        before = [
            (u.id, u.name, u.roles, u.team_id, u.superior_id, u.updated_at)
            for u in (await s.scalars(select(User).order_by(User.id))).all()
        ]
    clock.advance(hours=2)
    status, report = await put(client, "users", USERS)
    assert status == 200 and report["unchanged"] == 2 and report["created"] == report["updated"] == 0
    resp = await client.post("/api/v1/customers", json=[CUSTOMER], headers=AUTH)
    assert resp.status == 200 and (await resp.json())["unchanged"] == 1
    async with db.sessions() as s:
        after = [
            (u.id, u.name, u.roles, u.team_id, u.superior_id, u.updated_at)
            for u in (await s.scalars(select(User).order_by(User.id))).all()
        ]
        audits = (await s.scalars(select(AuditLog))).all()
    assert after == before
    assert len(audits) == 4 and {a.actor_label for a in audits} == {"api"}
    assert await count(db, Customer) == 1


async def test_get_returns_the_stored_object_and_round_trips(
    client: TestClient[Any, Any], clock: SettableClock
) -> None:
    await put(client, "users", USERS)
    await put(client, "customers", [CUSTOMER])
    opp = {"external_id": "O1", "name": "二期", "customer": "C001", "owner": "E004", "stage": "方案呈现",
           "amount": 380000, "stage_entered_at": "2026-11-24 15:00"}  # fmt: skip
    assert (await put(client, "opportunities", [opp]))[0] == 200

    resp = await client.get("/api/v1/opportunities/O1", headers=AUTH)
    assert resp.status == 200
    item = await resp.json()
    assert item["amount"] == "380000.00" and item["stage_entered_at"] == "2026-11-24T15:00:00+08:00"
    assert item["customer"] == "C001" and item["owner"] == "E004" and item["status"] == "open"
    assert isinstance(item["id"], int)

    resp = await client.get("/api/v1/users/E001", headers=AUTH)
    user = await resp.json()
    assert user["team"] == "华东/华东一组" and user["manages"] == ["华东", "华东/华东一组"]
    assert user["roles"] == ["manager"] and user["superior"] is None and user["active"] is True
    customer = await (await client.get("/api/v1/customers/C001", headers=AUTH)).json()
    assert customer["aliases"] == ["华远", "华远科技"] and customer["region"] == "华东"

    clock.advance(hours=1)
    for kind, obj in (("opportunities", item), ("users", user), ("customers", customer)):
        status, report = await put(client, kind, [obj])  # what GET returns can be sent back as is
        assert status == 200 and report["unchanged"] == 1, report

    assert (await client.get("/api/v1/users/NOPE", headers=AUTH)).status == 404
    assert (await client.get("/api/v1/users/" + "x" * 300, headers=AUTH)).status == 404


async def test_item_errors_have_their_index(client: TestClient[Any, Any], db: Database) -> None:
    await put(client, "users", USERS)
    items = [
        {"external_id": "O1", "name": "好", "customer": "C001", "owner": "E004", "stage": "触达"},
        {"external_id": "O2", "name": "坏", "customer": "C001", "owner": "E004", "stage": "不存在"},
    ]
    assert (await put(client, "customers", [CUSTOMER]))[0] == 200
    status, report = await put(client, "opportunities", items)
    assert status == 200 and report["created"] == 1 and report["failed"] == 1
    assert report["errors"] == [{"index": 1, "column": "stage", "error": report["errors"][0]["error"]}]

    status, report = await put(client, "opportunities", [{"external_id": "O3", "nonsense": 1}])
    assert status == 422  # nothing applied
    assert {e["column"] for e in report["errors"]} == {"nonsense", "name", "customer", "owner", "stage"}
    status, report = await put(client, "opportunities", [])
    assert status == 200 and report["total"] == 0


async def test_dry_run(client: TestClient[Any, Any], db: Database) -> None:
    status, report = await put(client, "users", USERS, params={"dry_run": "true"})
    assert status == 200 and report["created"] == 2 and report["dry_run"] is True
    assert await count(db, User) == 0
    resp = await client.put("/api/v1/users", json=USERS, headers=AUTH, params={"dry_run": "perhaps"})
    assert resp.status == 400


# ---------------------------------------------------------------- bad bodies and limits


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"{",
        b'{"external_id": "E1"}',  # an object, not an array
        b'{"items": [], "more": 1}',
        b"[NaN]",
        b'[{"amount": Infinity}]',
        b'[{"external_id": "a", "external_id": "b"}]',  # duplicate keys
        b"\xff\xfe[]",
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting (within the size limit below)
        b'"just a string"',
    ],
)
async def test_bad_json_is_400(client: TestClient[Any, Any], db: Database, body: bytes) -> None:
    if len(body) > MAX_BODY:
        body = b"[" * (MAX_BODY // 2 - 1) + b"]" * (MAX_BODY // 2 - 1)
    resp = await client.put("/api/v1/users", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 400, await resp.text()
    assert "error" in await resp.json()
    assert await count(db, User) == 0


async def test_items_that_are_not_objects_are_reported(client: TestClient[Any, Any]) -> None:
    status, report = await put(client, "users", [1, "x", None, [], USERS[0]])
    assert status == 200 and report["created"] == 1
    assert [e["index"] for e in report["errors"]] == [0, 1, 2, 3]


async def test_oversized_body_is_413(client: TestClient[Any, Any], db: Database) -> None:
    big = json.dumps([{**USERS[0], "name": "x" * (MAX_BODY + 10)}]).encode()
    resp = await client.put("/api/v1/users", data=big, headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status == 413 and "error" in await resp.json()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(8):
            yield b" " * (MAX_BODY // 4)

    resp = await client.put("/api/v1/users", data=chunks(), headers=AUTH)
    assert resp.status == 413
    too_many = [{"external_id": f"E{i}"} for i in range(501)]
    resp = await client.put("/api/v1/users", json=too_many, headers=AUTH)
    assert resp.status == 413
    assert await count(db, User) == 0


async def test_hostile_values_never_500(client: TestClient[Any, Any], db: Database) -> None:
    await put(client, "users", USERS)
    hostile: list[Any] = [
        {"external_id": "C1", "name": "Robert'); DROP TABLE customers;--", "owner": "E004' OR '1'='1"},
        {"external_id": "C2", "name": "x" * 10_000},
        {"external_id": "C3", "name": "\u0000\u0001"},
        {"external_id": "C4", "name": "\ud800"},
        {"external_id": "C5", "name": "好", "aliases": {"a": 1}},
        {"external_id": "C6", "name": "好", "region": "a/b/c"},
        {"external_id": {"$ne": None}, "name": "好"},
        {"external_id": "C8", "name": "HUGE_NUMBER"},
        {"external_id": "C9", "name": "Robert'); DROP TABLE customers;--"},
        {"external_id": "C10", "name": "好", "owner": None, "region": None, "aliases": None},
    ]
    body = json.dumps(hostile).replace('"HUGE_NUMBER"', "1e400").encode()  # valid JSON, not a float
    resp = await client.put("/api/v1/customers", data=body, headers={**AUTH, "Content-Type": "application/json"})
    status, report = resp.status, await resp.json()
    assert status == 200 and report["created"] == 2
    assert sorted(e["index"] for e in report["errors"]) == [0, 1, 2, 3, 4, 5, 6, 7]
    async with db.sessions() as s:
        names = sorted((await s.scalars(select(Customer.name))).all())
    assert names == ["Robert'); DROP TABLE customers;--", "好"]


# ---------------------------------------------------------------- OpenAPI


async def test_openapi_document(client: TestClient[Any, Any]) -> None:
    resp = await client.get("/api/v1/openapi.json")  # no token needed
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    assert doc["security"] == [{"bearerAuth": []}]
    for kind in KINDS:
        assert set(doc["paths"][f"/api/v1/{kind}"]) == {"put", "post"}
        assert set(doc["paths"][f"/api/v1/{kind}/{{external_id}}"]) == {"get"}
    assert doc["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    stage = doc["components"]["schemas"]["Opportunity"]["properties"]["stage"]
    assert stage["enum"][0] == "线索" and "复购" in stage["enum"]
    assert doc["components"]["schemas"]["User"]["required"] == ["external_id", "name", "roles"]

    operation_ids = [op["operationId"] for path in doc["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):  # every $ref resolves
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict)


async def test_openapi_fields_match_the_csv_columns(client: TestClient[Any, Any]) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    for kind in KINDS:
        header = (ROOT / "bot" / "demo_data" / f"{kind}.csv").read_text(encoding="utf-8").splitlines()[0]
        schema = doc["components"]["schemas"][{"users": "User", "customers": "Customer", "leads": "Lead",
                                               "opportunities": "Opportunity", "contracts": "Contract",
                                               "payments": "Payment"}[kind]]  # fmt: skip
        writable = {k for k, v in schema["properties"].items() if not v.get("readOnly")}
        assert set(header.split(",")) <= writable


async def test_demo_csv_and_api_agree(client: TestClient[Any, Any], db: Database, clock: SettableClock) -> None:
    """The demo team imported from CSV reads back through the API and re-imports unchanged."""
    for kind in KINDS:
        assert (await import_csv(db, kind, ROOT / "bot" / "demo_data" / f"{kind}.csv", clock.now())).ok
    for kind, ext in (("users", "E004"), ("customers", "C001"), ("leads", "L001"), ("opportunities", "O005"),
                      ("contracts", "K001"), ("payments", "P005")):  # fmt: skip
        item = await (await client.get(f"/api/v1/{kind}/{ext}", headers=AUTH)).json()
        status, report = await put(client, kind, [item])
        assert status == 200 and report["unchanged"] == 1, (kind, report)


async def test_links_to_objects_without_external_id_survive_a_round_trip(
    client: TestClient[Any, Any], db: Database, clock: SettableClock
) -> None:
    """A superior synced from WeCom has no external_id: GET leaves the field out, so PUT keeps it."""
    async with db.transaction() as s:
        boss = User(name="老板", wecom_userid="boss", roles=["manager"], created_at=clock.now())
        s.add(boss)
        await s.flush()
        s.add(User(name="张三", external_id="E004", roles=["rep"], superior_id=boss.id, created_at=clock.now()))
    item = await (await client.get("/api/v1/users/E004", headers=AUTH)).json()
    assert "superior" not in item
    status, report = await put(client, "users", [item])
    assert status == 200 and report["unchanged"] == 1
    async with db.sessions() as s:
        assert (await s.scalars(select(User).where(User.external_id == "E004"))).one().superior_id is not None
