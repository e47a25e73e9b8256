"""CSV import (store.importing): demo data, idempotency, bad rows by line, hostile values, speed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from bot.clock import SettableClock
from store.db import Database
from store.importing import UnknownKindError, format_report, import_csv, import_rows
from store.importing import messages as m
from store.importing.docs import render_markdown
from store.importing.people import UsersImporter
from store.importing.tables import table_of
from store.importing.values import CellError, parse_datetime
from store.models import (
    AuditLog,
    Contract,
    Customer,
    CustomerAlias,
    Lead,
    Opportunity,
    OrgUnit,
    Payment,
    User,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "bot" / "demo_data"
KINDS = ("users", "customers", "leads", "opportunities", "contracts", "payments")
TABLES = (OrgUnit, User, Customer, CustomerAlias, Lead, Opportunity, Contract, Payment)

USERS_CSV = """external_id,name,roles,wecom_userid,team,superior,manages
E001,周立新,manager,manager_hd,华东/华东一组,,华东;华东/华东一组
E004,张三,rep,zhangsan,华东/华东一组,E001,
E005,李四,rep,lisi,华东/华东一组,E001,
"""
CUSTOMERS_CSV = """external_id,name,aliases,industry,region,owner
C001,华远科技有限公司,华远;华远科技,IT服务,华东,E004
C002,上海鼎新信息技术有限公司,鼎新,IT服务,华东,E005
"""


def write(tmp_path: Path, name: str, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    path = tmp_path / name
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


async def snapshot(db: Database) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    async with db.sessions() as s:
        for model in TABLES:
            t = table_of(model)
            rows = (await s.execute(select(t).order_by(t.c.id))).mappings().all()
            out[t.name] = [dict(r) for r in rows]
    return out


async def count(db: Database, model: type[Any]) -> int:
    async with db.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def load_base(db: Database, tmp_path: Path, now: datetime) -> None:
    for kind, text in (("users", USERS_CSV), ("customers", CUSTOMERS_CSV)):
        report = await import_csv(db, kind, write(tmp_path, f"{kind}.csv", text), now)
        assert report.ok, format_report(report)


def lines_of(report: Any) -> dict[int | None, list[str | None]]:
    out: dict[int | None, list[str | None]] = {}
    for e in report.errors:
        out.setdefault(e.line, []).append(e.column)
    return out


# ---------------------------------------------------------------- the demo data


async def test_demo_data_imports_cleanly_and_twice_changes_nothing(db: Database, clock: SettableClock) -> None:
    for kind in KINDS:
        report = await import_csv(db, kind, DEMO / f"{kind}.csv", clock.now())
        assert report.ok, format_report(report)
        assert report.created == report.total > 0
    first = await snapshot(db)
    assert len(first["users"]) == 13 and len(first["customers"]) == 15
    assert len(first["org_units"]) == 5  # 2 regions, 3 teams

    clock.advance(days=1)
    for kind in KINDS:
        report = await import_csv(db, kind, DEMO / f"{kind}.csv", clock.now())
        assert report.ok and report.unchanged == report.total and report.created == report.updated == 0
    assert await snapshot(db) == first  # same rows, same values, same updated_at
    async with db.sessions() as s:
        audits = (await s.scalars(select(AuditLog).order_by(AuditLog.id))).all()
    assert [a.action for a in audits] == ["import"] * 12
    assert audits[0].subject_type == "users" and audits[0].detail["created"] == 13
    assert audits[-1].detail["unchanged"] == 5


async def test_demo_data_shape(db: Database, clock: SettableClock) -> None:
    for kind in KINDS:
        assert (await import_csv(db, kind, DEMO / f"{kind}.csv", clock.now())).ok
    async with db.sessions() as s:
        units = {u.name: u for u in (await s.scalars(select(OrgUnit))).all()}
        users = {u.wecom_userid: u for u in (await s.scalars(select(User))).all()}
        assert {n for n, u in units.items() if u.kind == "region"} == {"华东", "华北"}
        assert units["华东一组"].parent_id == units["华东"].id
        assert units["华东"].manager_id == users["manager_hd"].id
        assert units["华东二组"].manager_id == users["manager_hd2"].id
        assert users["zhangsan"].superior_id == users["manager_hd"].id
        assert users["manager_hd2"].superior_id == users["manager_hd"].id
        assert users["zhangsan"].team_id == units["华东一组"].id
        assert users["zhengmin"].roles == ["finance"] and users["zhangsan"].roles == ["rep"]
        hy = (await s.scalars(select(Customer).where(Customer.external_id == "C001"))).one()
        assert hy.name == "华远科技有限公司" and {a.alias for a in hy.aliases} == {"华远", "华远科技"}
        assert hy.owner_id == users["zhangsan"].id and hy.region_id == units["华东"].id
        o1 = (await s.scalars(select(Opportunity).where(Opportunity.external_id == "O001"))).one()
        assert o1.amount == Decimal("380000.00") and o1.stage == "方案呈现"
        # Naive times are Asia/Shanghai: 15:00 there is 07:00 UTC.
        assert o1.stage_entered_at == datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
        refund = (await s.scalars(select(Payment).where(Payment.external_id == "P005"))).one()
        assert refund.amount == Decimal("-3000.00")
        k1 = (await s.scalars(select(Contract).where(Contract.external_id == "K001"))).one()
        assert k1.status == "signed" and k1.legal_approved_at is not None
        stages = {o.stage for o in (await s.scalars(select(Opportunity))).all()}
        assert len(stages) >= 7


# ---------------------------------------------------------------- bad rows


async def test_bad_rows_are_reported_by_line_and_good_rows_kept(
    db: Database, clock: SettableClock, tmp_path: Path
) -> None:
    await load_base(db, tmp_path, clock.now())
    text = (
        "external_id,name,customer,owner,stage,amount,stage_entered_at\n"
        "O1,好商机,C001,E004,触达,50000,2026-11-20 10:00\n"  # line 2: good
        "O2,未知阶段,C001,E004,报价中,50000,\n"  # line 3: unknown stage
        "O3,坏日期,C001,E004,触达,50000,2026-13-45\n"  # line 4: bad date
        ",没有编号,C001,E004,触达,50000,\n"  # line 5: missing external_id
        "O5,,C001,E004,触达,50000,\n"  # line 6: missing name
        "O6,未知负责人,C001,E999,触达,50000,\n"  # line 7: unknown owner
        "O7,坏金额,C001,E004,触达,5万,\n"  # line 8: bad amount
        "O8,未知客户,C999,E004,触达,1,\n"  # line 9: unknown customer
        '"O9","另一个好商机",C002,E005,需求诊断,"1,234.50",\n'  # line 10: good
    )
    report = await import_csv(db, "opportunities", write(tmp_path, "o.csv", text), clock.now())
    assert report.created == 2 and report.failed == 7 and report.total == 9
    assert lines_of(report) == {
        3: ["stage"],
        4: ["stage_entered_at"],
        5: ["external_id"],
        6: ["name"],
        7: ["owner"],
        8: ["amount"],
        9: ["customer"],
    }
    reasons = {e.line: e.message for e in report.errors}
    assert "报价中" in reasons[3] and "线索" in reasons[3]
    assert "E999" in reasons[7]
    async with db.sessions() as s:
        opps = {o.external_id: o for o in (await s.scalars(select(Opportunity))).all()}
    assert set(opps) == {"O1", "O9"}
    assert opps["O9"].amount == Decimal("1234.50")
    text_report = format_report(report)
    assert "第 3 行 [stage]" in text_report and "第 9 行 [customer]" in text_report


@pytest.mark.parametrize(
    ("amount", "ok"),
    [
        ("50000", True),
        ("50,000.00", True),
        ("¥50,000", True),
        ("0.5", True),
        ("1,234,567.89", True),
        ("NaN", False),
        ("nan", False),
        ("inf", False),
        ("-Infinity", False),
        ("1e5", False),
        ("1.005", False),
        ("50,000.001", False),
        ("1,2,3", False),
        ("12,34", False),
        ("-100", False),  # contracts are never negative
        ("1000000000000", False),
        ("abc", False),
    ],
)
async def test_contract_amounts(db: Database, clock: SettableClock, tmp_path: Path, amount: str, ok: bool) -> None:
    await load_base(db, tmp_path, clock.now())
    text = f'external_id,customer,owner,amount\nK1,C001,E004,"{amount}"\n'
    report = await import_csv(db, "contracts", write(tmp_path, "k.csv", text), clock.now())
    assert report.ok is ok, format_report(report)
    if not ok:
        assert [(e.line, e.column) for e in report.errors] == [(2, "amount")]
        assert await count(db, Contract) == 0


async def test_payments_allow_refunds_not_zero(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    await load_base(db, tmp_path, clock.now())
    contracts = "external_id,customer,owner,amount,status,signed_at\nK1,C001,E004,100000,signed,2026-11-01\n"
    assert (await import_csv(db, "contracts", write(tmp_path, "k.csv", contracts), clock.now())).ok
    text = (
        "external_id,contract,amount,received_at\n"
        'P1,K1,"60,000.00",2026-11-10 10:00\n'
        "P2,K1,-5000,2026-11-12T10:00:00+08:00\n"
        "P3,K1,0,2026-11-12\n"
        "P4,K9,100,2026-11-12\n"
        "P5,K1,100,\n"
    )
    report = await import_csv(db, "payments", write(tmp_path, "p.csv", text), clock.now())
    assert report.created == 2
    assert lines_of(report) == {4: ["amount"], 5: ["contract"], 6: ["received_at"]}
    async with db.sessions() as s:
        amounts = sorted((await s.scalars(select(Payment.amount))).all())
    assert amounts == [Decimal("-5000.00"), Decimal("60000.00")]


async def test_duplicate_external_id_in_one_file(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    text = "external_id,name,roles\nE1,甲,rep\nE2,乙,rep\nE1,丙,rep\n"
    report = await import_csv(db, "users", write(tmp_path, "u.csv", text), clock.now())
    assert report.created == 2
    assert [(e.line, e.column) for e in report.errors] == [(4, "external_id")]
    assert "第 2 行" in report.errors[0].message


async def test_line_numbers_count_physical_lines(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    text = (
        "external_id,name,aliases,owner\n"
        'C1,"多行\n名称",,\n'  # lines 2-3: a quoted value spanning two lines (a newline: rejected)
        "\n"  # line 4: blank
        "C2,好客户,,\n"  # line 5
        "C3,坏客户,,E404\n"  # line 6
    )
    report = await import_csv(db, "customers", write(tmp_path, "c.csv", text), clock.now())
    assert report.created == 1
    assert lines_of(report) == {2: ["name"], 6: ["owner"]}
    assert "U+000A" in report.errors[0].message


# ---------------------------------------------------------------- the file and its header


@pytest.mark.parametrize(("bom", "crlf"), [(False, False), (True, False), (False, True), (True, True)])
async def test_bom_and_line_ends(db: Database, clock: SettableClock, tmp_path: Path, bom: bool, crlf: bool) -> None:
    path = write(tmp_path, "u.csv", USERS_CSV, bom=bom, crlf=crlf)
    report = await import_csv(db, "users", path, clock.now())
    assert report.ok and report.created == 3
    async with db.sessions() as s:
        names = sorted(filter(None, (await s.scalars(select(User.external_id))).all()))
    assert names == ["E001", "E004", "E005"]  # no BOM glued to the first column, no stray \r
    other = write(tmp_path, "u2.csv", USERS_CSV, bom=not bom, crlf=not crlf)
    again = await import_csv(db, "users", other, clock.now())
    assert again.ok and again.unchanged == 3


async def test_chinese_headers_and_any_column_order(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    text = "角色,姓名,外部编号,企业微信账号\n销售;销售主管,王五,E9,wangwu\n"
    report = await import_csv(db, "users", write(tmp_path, "u.csv", text), clock.now())
    assert report.ok
    async with db.sessions() as s:
        user = (await s.scalars(select(User))).one()
    assert (user.name, user.roles, user.wecom_userid) == ("王五", ["rep", "manager"], "wangwu")


async def test_unknown_columns_abort_once_and_write_nothing(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    text = "external_id,name,roles,nickname,shoe_size\n" + "E1,甲,rep,阿甲,42\n" * 3
    report = await import_csv(db, "users", write(tmp_path, "u.csv", text), clock.now())
    assert report.aborted and not report.ok
    assert len(report.errors) == 1 and report.errors[0].line == 1
    assert "nickname" in report.errors[0].message and "shoe_size" in report.errors[0].message
    assert await count(db, User) == 0
    async with db.sessions() as s:
        audit = (await s.scalars(select(AuditLog))).one()
    assert audit.detail["aborted"] is True


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("external_id,name\nE1,甲\n", "roles"),  # a required column missing from the header
        ("external_id,name,roles,name\nE1,甲,rep,乙\n", "name"),  # duplicated column
        ("external_id,,roles\nE1,x,rep\n", "2"),  # unnamed column in the middle
        ("", "表头"),  # empty file
    ],
)
async def test_header_problems_abort(
    db: Database, clock: SettableClock, tmp_path: Path, text: str, needle: str
) -> None:
    report = await import_csv(db, "users", write(tmp_path, "u.csv", text), clock.now())
    assert report.aborted and needle in report.errors[0].message
    assert await count(db, User) == 0


async def test_file_encoding_problems(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("external_id,name,roles\nE1,张三,rep\n".encode("gbk"))
    report = await import_csv(db, "users", gbk, clock.now())
    assert report.aborted and report.errors[0].line == 2 and "UTF-8" in report.errors[0].message
    missing = await import_csv(db, "users", tmp_path / "nope.csv", clock.now())
    assert missing.aborted and "nope.csv" in missing.errors[0].message
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("external_id,name,roles\n".encode("utf-16"))
    assert (await import_csv(db, "users", utf16, clock.now())).aborted


async def test_extra_fields_and_short_rows(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    text = "external_id,name,roles,mobile,,\nE1,甲,rep\nE2,乙,rep,,,\nE3,丙,rep,,,多余\n"
    report = await import_csv(db, "users", write(tmp_path, "u.csv", text), clock.now())
    assert report.created == 2  # a short row is padded; trailing empty cells are ignored
    assert [(e.line, e.column) for e in report.errors] == [(4, None)]


async def test_unknown_kind(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    with pytest.raises(UnknownKindError):
        await import_csv(db, "widgets", write(tmp_path, "w.csv", "a\n1\n"), clock.now())
    with pytest.raises(UnknownKindError):
        await import_rows(db, "widgets", [], clock.now())


# ---------------------------------------------------------------- hostile values


async def test_hostile_values_never_half_write(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    await load_base(db, tmp_path, clock.now())
    sql = "Robert'); DROP TABLE customers;--"
    huge = "长" * 10_000
    text = (
        "external_id,name,aliases,industry,owner\n"
        f'C10,"{sql}","x\' OR 1=1 --",IT服务,E004\n'  # line 2: stored verbatim
        f"C11,{huge},,,\n"  # line 3: name too long
        f"C12,正常名字,{huge},,\n"  # line 4: alias too long: the customer must not be created either
        "C13,有\x07响铃,,,\n"  # line 5: control character
        "C14,正常,,\u202eevil,\n"  # line 6: bidi override
        "C15,正常,,,E004' OR '1'='1\n"  # line 7: a reference that is not an id
        f"{'X' * 65},正常,,,\n"  # line 8: external_id too long
    )
    report = await import_csv(db, "customers", write(tmp_path, "c.csv", text), clock.now())
    assert report.created == 1
    assert lines_of(report) == {
        3: ["name"],
        4: ["aliases"],
        5: ["name"],
        6: ["industry"],
        7: ["owner"],
        8: ["external_id"],
    }
    reasons = {e.line: e.message for e in report.errors}
    assert "10000" in reasons[3] and "200" in reasons[3]
    assert "U+0007" in reasons[5]
    assert len(format_report(report)) < 5000  # huge values are not echoed back
    async with db.sessions() as s:
        stored = {c.external_id: c for c in (await s.scalars(select(Customer))).all()}
        assert set(stored) == {"C001", "C002", "C10"}
        assert stored["C10"].name == sql
        assert [a.alias for a in stored["C10"].aliases] == ["x' OR 1=1 --"]
        assert await s.scalar(select(func.count()).select_from(User)) == 3


async def test_hostile_json_values(db: Database, clock: SettableClock) -> None:
    rows: list[tuple[int, Any]] = [
        (0, {"external_id": "E1", "name": "甲", "roles": ["rep"], "active": True}),
        (1, {"external_id": "E2", "name": "\ud800", "roles": "rep"}),  # lone surrogate
        (2, {"external_id": "E3", "name": "nul\x00", "roles": "rep"}),
        (3, {"external_id": "E4", "name": ["list"], "roles": "rep"}),
        (4, {"external_id": "E5", "name": "乙", "roles": ["rep", 7]}),
        (5, {"external_id": "E6", "name": "丙", "roles": "pirate"}),
        (6, {"external_id": "E7", "name": "丁", "roles": "rep", "active": "maybe"}),
        (7, ["not", "an", "object"]),
        (8, {"external_id": "E9", "name": "戊", "roles": "rep", "id": 5, "updated_at": None}),  # read-only: ignored
        (9, {"external_id": "E10", "name": "己", "roles": "rep", "\x00evil" * 20: 1}),
        (10, {"external_id": 12345, "name": "庚", "roles": "rep"}),  # a number for a text column is fine
    ]
    report = await import_rows(db, "users", rows, clock.now())
    assert report.created == 3
    assert lines_of(report) == {
        1: ["name"],
        2: ["name"],
        3: ["name"],
        4: ["roles"],
        5: ["roles"],
        6: ["active"],
        7: [None],
        9: [report.errors[-1].column],
    }
    assert len(report.errors[-1].column or "") < 100


# ---------------------------------------------------------------- upsert semantics


async def test_updated_at_changes_only_with_a_value(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    await load_base(db, tmp_path, clock.now())
    first = clock.now()
    clock.advance(hours=1)
    changed = CUSTOMERS_CSV.replace("华远科技有限公司", "华远科技股份有限公司")
    report = await import_csv(db, "customers", write(tmp_path, "c.csv", changed), clock.now())
    assert (report.updated, report.unchanged) == (1, 1)
    async with db.sessions() as s:
        rows = {c.external_id: c for c in (await s.scalars(select(Customer))).all()}
    assert rows["C001"].updated_at == clock.now() and rows["C001"].name == "华远科技股份有限公司"
    assert rows["C002"].updated_at is None and rows["C002"].created_at == first

    clock.advance(hours=1)
    alias_only = changed.replace("华远;华远科技", "华远科技;华远")  # same set, other order: unchanged
    assert (await import_csv(db, "customers", write(tmp_path, "c.csv", alias_only), clock.now())).unchanged == 2
    fewer = changed.replace("华远;华远科技", "华远")
    report = await import_csv(db, "customers", write(tmp_path, "c.csv", fewer), clock.now())
    assert report.updated == 1
    async with db.sessions() as s:
        c1 = (await s.scalars(select(Customer).where(Customer.external_id == "C001"))).one()
        assert [a.alias for a in c1.aliases] == ["华远"] and c1.updated_at == clock.now()


async def test_absent_column_keeps_empty_cell_clears(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    await load_base(db, tmp_path, clock.now())
    no_owner_column = "external_id,name\nC001,华远科技有限公司\n"
    assert (await import_csv(db, "customers", write(tmp_path, "c.csv", no_owner_column), clock.now())).unchanged == 1
    empty_owner = "external_id,name,owner,aliases\nC001,华远科技有限公司,,\n"
    assert (await import_csv(db, "customers", write(tmp_path, "c.csv", empty_owner), clock.now())).updated == 1
    async with db.sessions() as s:
        c1 = (await s.scalars(select(Customer).where(Customer.external_id == "C001"))).one()
        assert c1.owner_id is None and c1.aliases == [] and c1.region_id is not None


async def test_json_values_and_null(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    await load_base(db, tmp_path, clock.now())
    base = {"external_id": "K1", "customer": "C001", "owner": "E004", "status": "signed"}
    rows = [(0, {**base, "amount": Decimal("50000.5"), "signed_at": "2026-11-20", "payment_terms_days": 30})]
    assert (await import_rows(db, "contracts", rows, clock.now())).created == 1
    again = [(0, {**base, "amount": "50,000.50", "signed_at": "2026-11-20T00:00:00+08:00", "payment_terms_days": "30"})]
    assert (await import_rows(db, "contracts", again, clock.now())).unchanged == 1
    cleared = [(0, {**base, "amount": 50000.5, "signed_at": "2026-11-20", "payment_terms_days": None})]
    assert (await import_rows(db, "contracts", cleared, clock.now())).updated == 1
    async with db.sessions() as s:
        k1 = (await s.scalars(select(Contract))).one()
    assert k1.payment_terms_days is None and k1.amount == Decimal("50000.50")


async def test_opportunity_stage_clock(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    """R4/R5 timing: a new stage starts now unless stage_entered_at is given; re-import keeps it."""
    await load_base(db, tmp_path, clock.now())
    row = {"external_id": "O1", "name": "商机", "customer": "C001", "owner": "E004", "stage": "触达"}
    created_at = clock.now()
    assert (await import_rows(db, "opportunities", [(0, row)], clock.now())).created == 1
    clock.advance(hours=5)
    assert (await import_rows(db, "opportunities", [(0, row)], clock.now())).unchanged == 1
    clock.advance(hours=5)
    moved = {**row, "stage": "需求诊断"}
    assert (await import_rows(db, "opportunities", [(0, moved)], clock.now())).updated == 1
    async with db.sessions() as s:
        opp = (await s.scalars(select(Opportunity))).one()
    assert opp.created_at == created_at and opp.status == "open" and opp.closed_at is None
    assert opp.stage_entered_at == opp.last_progress_at == opp.updated_at == clock.now()

    clock.advance(hours=1)
    won = {**moved, "status": "赢单"}
    assert (await import_rows(db, "opportunities", [(0, won)], clock.now())).updated == 1
    closed_at = clock.now()
    clock.advance(hours=1)
    assert (await import_rows(db, "opportunities", [(0, won)], clock.now())).unchanged == 1
    async with db.sessions() as s:
        opp = (await s.scalars(select(Opportunity))).one()
    assert opp.status == "won" and opp.closed_at == closed_at

    bad = {**row, "external_id": "O2", "closed_at": "2026-11-01"}
    report = await import_rows(db, "opportunities", [(0, bad)], clock.now())
    assert [(e.line, e.column) for e in report.errors] == [(0, "closed_at")]


async def test_lead_assignment_rules(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    """R1: an assignee without assigned_at is assigned now; times cannot precede the inquiry."""
    await load_base(db, tmp_path, clock.now())
    text = (
        "external_id,title,created_at,assignee,assigned_at,first_contact_at\n"
        "L1,询价,2026-11-30 08:00,E004,,\n"
        "L2,询价,2026-11-30 08:00,,2026-11-30 09:00,\n"
        "L3,询价,2026-11-30 08:00,E004,2026-11-30 07:00,\n"
        "L4,询价,2026-11-30 08:00,E004,2026-11-30 08:30,2026-11-29 08:00\n"
        "L5,询价,,,,\n"
    )
    report = await import_csv(db, "leads", write(tmp_path, "l.csv", text), clock.now())
    assert report.created == 2
    assert lines_of(report) == {3: ["assigned_at"], 4: ["assigned_at"], 5: ["first_contact_at"]}
    async with db.sessions() as s:
        leads = {x.external_id: x for x in (await s.scalars(select(Lead))).all()}
    assert leads["L1"].assigned_at == clock.now() and leads["L1"].status == "open"
    assert leads["L5"].created_at == clock.now() and leads["L5"].assigned_at is None
    clock.advance(hours=1)
    again = await import_csv(db, "leads", write(tmp_path, "l.csv", text), clock.now())
    assert again.unchanged == 2  # the default assigned_at is kept, not moved to the new now


async def test_contract_rules(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    await load_base(db, tmp_path, clock.now())
    opps = "external_id,name,customer,owner,stage\nO1,甲,C001,E004,签约\n"
    assert (await import_csv(db, "opportunities", write(tmp_path, "o.csv", opps), clock.now())).ok
    text = (
        "external_id,customer,owner,opportunity,amount,status,signed_at\n"
        "K1,C001,E004,O1,100,signed,2026-11-20\n"
        "K2,C001,E004,,100,signed,\n"
        "K3,C002,E005,O1,100,draft,\n"
        "K4,C001,E004,O9,100,已签约,2026-11-20\n"
    )
    report = await import_csv(db, "contracts", write(tmp_path, "k.csv", text), clock.now())
    assert report.created == 1
    assert lines_of(report) == {3: ["signed_at"], 4: ["opportunity"], 5: ["opportunity"]}


async def test_superiors_forward_references_and_cycles(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    text = (
        "external_id,name,roles,superior\n"
        "A,甲,rep,B\n"  # line 2: superior defined later in the file
        "B,乙,manager,\n"
        "C,丙,rep,D\n"  # lines 4-5: a cycle
        "D,丁,rep,C\n"
        "E,戊,rep,E\n"  # line 6: own superior
        "F,己,rep,Z\n"  # line 7: unknown
        "G,庚,rep,F\n"  # line 8: superior's row failed
    )
    report = await import_csv(db, "users", write(tmp_path, "u.csv", text), clock.now())
    assert report.created == 2
    assert lines_of(report) == {4: ["superior"], 5: ["superior"], 6: ["superior"], 7: ["superior"], 8: ["superior"]}
    async with db.sessions() as s:
        users = {u.external_id: u for u in (await s.scalars(select(User))).all()}
    assert users["A"].superior_id == users["B"].id
    # A cycle through stored data is caught too: B (stored) may not report to A.
    loop = await import_rows(
        db, "users", [(0, {"external_id": "B", "name": "乙", "roles": "manager", "superior": "A"})], clock.now()
    )
    assert [e.column for e in loop.errors] == ["superior"]


async def test_wecom_userid_unique_and_adoption(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    async with db.transaction() as s:  # a user synced from the WeCom directory: no external_id yet
        await s.execute(
            insert(User).values(name="张三", wecom_userid="zhangsan", roles=["rep"], created_at=clock.now())
        )
    text = "external_id,name,roles,wecom_userid\nE004,张三,rep,zhangsan\nE005,李四,rep,zhangsan\nE006,王五,rep,lisi\n"
    report = await import_csv(db, "users", write(tmp_path, "u.csv", text), clock.now())
    assert (report.created, report.updated) == (1, 1)
    assert [(e.line, e.column) for e in report.errors] == [(3, "wecom_userid")]
    async with db.sessions() as s:
        users = {u.wecom_userid: u for u in (await s.scalars(select(User))).all()}
    assert users["zhangsan"].id == 1 and users["zhangsan"].external_id == "E004"
    taken = await import_rows(
        db, "users", [(0, {"external_id": "E007", "name": "x", "roles": "rep", "wecom_userid": "lisi"})], clock.now()
    )
    assert "E006" in taken.errors[0].message


async def test_manages_is_a_complete_list(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    await load_base(db, tmp_path, clock.now())
    moved = USERS_CSV.replace("华东;华东/华东一组", "华东/华东一组").replace(
        "E005,李四,rep,lisi,华东/华东一组,E001,", "E005,李四,manager,lisi,华东/华东一组,E001,华东"
    )
    report = await import_csv(db, "users", write(tmp_path, "u.csv", moved), clock.now())
    assert report.updated == 2 and report.ok
    async with db.sessions() as s:
        units = {u.name: u for u in (await s.scalars(select(OrgUnit))).all()}
        users = {u.external_id: u for u in (await s.scalars(select(User))).all()}
    assert units["华东"].manager_id == users["E005"].id
    assert units["华东一组"].manager_id == users["E001"].id
    clash = "external_id,name,roles,manages\nX1,甲,manager,华东/华东一组\nX2,乙,manager,华东/华东一组\n"
    report = await import_csv(db, "users", write(tmp_path, "m.csv", clash), clock.now())
    assert [(e.line, e.column) for e in report.errors] == [(3, "manages")]
    # A row that already manages the unit (unchanged) still claims it against later rows.
    keep = "external_id,name,roles,manages\nE001,周立新,manager,华东/华东一组\nX3,丙,manager,华东/华东一组\n"
    report = await import_csv(db, "users", write(tmp_path, "k.csv", keep), clock.now())
    assert [(e.line, e.column) for e in report.errors] == [(3, "manages")]
    assert "华东/华东一组" in report.errors[0].message
    bare = "external_id,name,roles,team\nX3,丙,rep,不存在的团队\n"
    report = await import_csv(db, "users", write(tmp_path, "b.csv", bare), clock.now())
    assert [(e.line, e.column) for e in report.errors] == [(2, "team")]
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(OrgUnit)) == 2


async def test_database_failure_in_a_chunk_isolates_the_row(
    db: Database, clock: SettableClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the database refuses a row that passed validation (here: the uniqueness pre-check is
    disabled), its chunk is retried row by row and only that row is lost, entirely."""
    monkeypatch.setattr(UsersImporter, "_check_unique", lambda self, row, existing: None)
    text = (
        "external_id,name,roles,wecom_userid,team\n"
        "E1,甲,rep,same,华东/一组\n"
        "E2,乙,rep,same,华东/二组\n"  # its new team must not survive the failed row either
        "E3,丙,rep,other,\n"
    )
    report = await import_csv(db, "users", write(tmp_path, "u.csv", text), clock.now())
    assert report.created == 2
    assert [(e.line, e.column) for e in report.errors] == [(3, None)]
    assert m.DB_ERROR.split(":")[0] in report.errors[0].message
    assert report.org_units_created == 2
    async with db.sessions() as s:
        assert sorted(filter(None, (await s.scalars(select(User.external_id))).all())) == ["E1", "E3"]
        assert sorted((await s.scalars(select(OrgUnit.name))).all()) == ["一组", "华东"]


async def test_dry_run_writes_nothing(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    report = await import_csv(db, "users", write(tmp_path, "u.csv", USERS_CSV), clock.now(), dry_run=True)
    assert report.created == 3 and report.dry_run and "试运行" in format_report(report)
    assert await count(db, User) == 0 and await count(db, OrgUnit) == 0 and await count(db, AuditLog) == 0


# ---------------------------------------------------------------- values, docs, speed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30", datetime(2026, 11, 29, 16, 0, tzinfo=UTC)),
        ("2026-11-30 10:00", datetime(2026, 11, 30, 2, 0, tzinfo=UTC)),
        ("2026/11/30 10:00:30", datetime(2026, 11, 30, 2, 0, 30, tzinfo=UTC)),
        ("2026-11-30T10:00:00Z", datetime(2026, 11, 30, 10, 0, tzinfo=UTC)),
        ("2026-11-30T10:00:00+0800", datetime(2026, 11, 30, 2, 0, tzinfo=UTC)),
        ("2026-11-30T10:00:00.5-05:00", datetime(2026, 11, 30, 15, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    "text", ["2026-02-30", "30/11/2026", "1899-01-01", "2026-11-30 25:00", "now", "2026-11-30+25:00"]
)
def test_parse_datetime_rejects(text: str) -> None:
    with pytest.raises(CellError):
        parse_datetime(text)


def test_docs_are_in_sync_with_the_spec_tables() -> None:
    """docs/import.md is generated: python -m store.importing.docs > docs/import.md"""
    assert (ROOT / "docs" / "import.md").read_text(encoding="utf-8") == render_markdown()


async def test_ten_thousand_rows_in_seconds(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    await load_base(db, tmp_path, clock.now())
    lines = ["external_id,name,aliases,industry,region,owner"]
    lines += [f"X{i},客户{i}有限公司,客户{i};简称{i},IT服务,华东,E00{4 + i % 2}" for i in range(10_000)]
    path = write(tmp_path, "big.csv", "\n".join(lines) + "\n")
    started = time.perf_counter()
    report = await import_csv(db, "customers", path, clock.now())
    first = time.perf_counter() - started
    assert report.ok and report.created == 10_000
    started = time.perf_counter()
    again = await import_csv(db, "customers", path, clock.now())
    assert again.unchanged == 10_000
    assert first < 15 and time.perf_counter() - started < 15  # a few seconds here; generous for slow CI
    assert await count(db, CustomerAlias) == 20_000 + 3


def test_format_report_lists_every_problem() -> None:
    from store.importing.report import ImportReport

    report = ImportReport(kind="users", total=3, created=1)
    report.add(None, None, "文件问题")
    report.add(3, "name", "必填")
    text = format_report(report)
    assert text.splitlines()[0].startswith("导入 users: 共 3 行, 新建 1")
    assert "  文件: 文件问题" in text and "  第 3 行 [name]: 必填" in text
    many = ImportReport(kind="users")
    for i in range(5):
        many.add(i + 2, None, "x")
    assert "另有 3 条" in format_report(many, max_errors=2)


async def test_time_default_is_the_given_now(db: Database, clock: SettableClock, tmp_path: Path) -> None:
    later = clock.now() + timedelta(days=3)
    await import_csv(db, "users", write(tmp_path, "u.csv", USERS_CSV), later)
    async with db.sessions() as s:
        assert set((await s.scalars(select(User.created_at))).all()) == {later}
