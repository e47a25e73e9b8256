"""The documented columns of every import kind: the single source of truth.

The CSV reader (header check), the row parser (types, lengths, choices), docs/import.md and the
OpenAPI schema of the JSON API are all generated from SPECS. Lengths match store/models/.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from store.importing.columns import (
    BOOL_FALSE,
    BOOL_TRUE,
    CONTRACT_STATUSES,
    LEAD_STATUSES,
    MAX_AMOUNT,
    MAX_LIST_ITEMS,
    OPPORTUNITY_STATUSES,
    ROLE_SYNONYMS,
    ROLES,
    Column,
    ColumnType,
    KindSpec,
)

__all__ = [
    "BOOL_FALSE",
    "BOOL_TRUE",
    "KINDS",
    "MAX_AMOUNT",
    "MAX_LIST_ITEMS",
    "SPECS",
    "Column",
    "ColumnType",
    "KindSpec",
]


def _ext(what: str) -> Column:
    return Column(
        "external_id",
        ColumnType.STR,
        "外部编号",
        f"Stable id of the {what} in your system; the upsert key (importing again updates it).",
        required=True,
        max_length=64,
    )


def _ref(name: str, label: str, kind: str, what: str, *, required: bool = False) -> Column:
    """A reference to another kind by its external_id."""
    description = f"external_id of the {what}."
    return Column(name, ColumnType.STR, label, description, required=required, max_length=64, ref=kind)


def _when(
    name: str,
    label: str,
    description: str,
    *,
    required: bool = False,
    clears: bool = True,
    default: str | None = None,
) -> Column:
    return Column(name, ColumnType.DATETIME, label, description, required=required, clears=clears, default=default)


USERS = KindSpec(
    "users",
    "Users (人员)",
    "People in the directory: reps, managers, finance, delivery, sales ops. Import users first.",
    (
        _ext("person"),
        Column("name", ColumnType.STR, "姓名", "Display name.", required=True, max_length=128),
        Column(
            "roles",
            ColumnType.LIST,
            "角色",
            "Roles, ';'-separated: rep, manager, finance, delivery, sales_ops, admin "
            "(Chinese 销售/销售主管/财务/交付/销售运营/管理员 accepted).",
            required=True,
            choices=ROLES,
            synonyms=ROLE_SYNONYMS,
        ),
        Column(
            "wecom_userid",
            ColumnType.STR,
            "企业微信账号",
            "WeCom userid (通讯录 账号); links chat messages to this person. Unique. A user synced "
            "from WeCom without an external_id is adopted by this value.",
            max_length=64,
            pattern=r"^[A-Za-z0-9_.@\-]+$",
        ),
        Column(
            "dingtalk_staff_id",
            ColumnType.STR,
            "钉钉账号",
            "DingTalk staff id. Unique.",
            max_length=64,
            pattern=r"^[A-Za-z0-9_.@\-]+$",
        ),
        Column(
            "team",
            ColumnType.STR,
            "团队",
            "Org unit: its external id, or a path '区域/团队' (e.g. 华东/华东一组); region and team "
            "are created when missing. A bare name matches an existing unit, or a region named in a "
            "path of the same file.",
            max_length=260,
            ref="org",
        ),
        Column(
            "superior",
            ColumnType.STR,
            "直属上级",
            "external_id of the direct superior (直属上级); may be a user later in the same file.",
            max_length=64,
            ref="users",
        ),
        Column(
            "manages",
            ColumnType.LIST,
            "负责团队",
            "Org units this person manages (sets the unit's manager), ';'-separated external ids or "
            "'区域/团队' paths; the list is complete (units no longer listed lose this manager).",
            max_length=260,
            ref="org",
        ),
        Column(
            "mobile",
            ColumnType.STR,
            "手机",
            "Mobile number.",
            max_length=32,
            pattern=r"^\+?[0-9][0-9 \-]{4,30}$",
        ),
        Column(
            "email",
            ColumnType.STR,
            "邮箱",
            "Email address.",
            max_length=128,
            pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        ),
        Column(
            "active",
            ColumnType.BOOL,
            "在职",
            "true/false (是/否); inactive users get no tasks.",
            clears=False,
            default="true",
        ),
    ),
)

CUSTOMERS = KindSpec(
    "customers",
    "Customers (客户)",
    "Customer companies with the names reps use for them (aliases).",
    (
        _ext("customer"),
        Column("name", ColumnType.STR, "客户名称", "Full company name.", required=True, max_length=200),
        Column(
            "aliases",
            ColumnType.LIST,
            "别名",
            "Other names reps use (e.g. 华远 for 华远科技), ';'-separated; the list is complete.",
            max_length=200,
        ),
        Column(
            "industry",
            ColumnType.STR,
            "行业",
            "Industry (selects rebate and talk-track packs).",
            max_length=64,
        ),
        Column("customer_type", ColumnType.STR, "客户类型", "Customer type / segment.", max_length=64),
        Column(
            "region",
            ColumnType.STR,
            "区域",
            "Region: its external id or name (e.g. 华东); created when missing.",
            max_length=128,
            ref="org",
        ),
        _ref("owner", "负责人", "users", "owning rep"),
    ),
)

LEADS = KindSpec(
    "leads",
    "Leads (线索)",
    "Inbound leads; created_at is the customer's first inquiry (R1, R2).",
    (
        _ext("lead"),
        Column("title", ColumnType.STR, "线索标题", "What the inquiry is about.", required=True, max_length=200),
        Column(
            "customer",
            ColumnType.STR,
            "客户",
            "external_id of the customer, if known.",
            max_length=64,
            ref="customers",
        ),
        Column(
            "region",
            ColumnType.STR,
            "区域",
            "Region: external id or name; created when missing.",
            max_length=128,
            ref="org",
        ),
        Column(
            "source",
            ColumnType.STR,
            "来源",
            "Channel the lead came from (官网, 展会, 转介绍 …).",
            max_length=64,
        ),
        _when("created_at", "创建时间", "The customer's first inquiry.", clears=False, default="now"),
        Column(
            "assignee",
            ColumnType.STR,
            "分配给",
            "external_id of the assigned rep.",
            max_length=64,
            ref="users",
        ),
        _when(
            "assigned_at",
            "分配时间",
            "When it was assigned; needs an assignee. Not before created_at.",
            default="now when an assignee is set",
        ),
        _when("first_contact_at", "首次联系时间", "First contact with the customer. Not before created_at."),
        Column(
            "status",
            ColumnType.ENUM,
            "状态",
            "open, converted or closed.",
            choices=LEAD_STATUSES,
            synonyms=(("跟进中", "open"), ("已转化", "converted"), ("已关闭", "closed")),
            clears=False,
            default="open",
        ),
    ),
)

OPPORTUNITIES = KindSpec(
    "opportunities",
    "Opportunities (商机)",
    "Deals in the funnel. A stage change without stage_entered_at starts the stage now (R4).",
    (
        _ext("opportunity"),
        Column("name", ColumnType.STR, "商机名称", "Name of the deal.", required=True, max_length=200),
        _ref("customer", "客户", "customers", "customer", required=True),
        _ref("owner", "负责人", "users", "owning rep", required=True),
        Column(
            "stage",
            ColumnType.ENUM,
            "阶段",
            "Funnel stage, one of [funnel] stages.",
            required=True,
            stages=True,
        ),
        Column("amount", ColumnType.DECIMAL, "金额", "Expected amount (yuan), e.g. 50000 or 50,000.00."),
        Column(
            "status",
            ColumnType.ENUM,
            "状态",
            "open, won, lost or silent.",
            choices=OPPORTUNITY_STATUSES,
            synonyms=(("进行中", "open"), ("赢单", "won"), ("输单", "lost"), ("静默", "silent")),
            clears=False,
            default="open",
        ),
        _when(
            "stage_entered_at",
            "进入阶段时间",
            "When the current stage was entered.",
            clears=False,
            default="now (on create or stage change)",
        ),
        _when(
            "last_progress_at",
            "最近进展时间",
            "Last progress (activity) on the deal.",
            clears=False,
            default="now (on create or stage change)",
        ),
        _when(
            "closed_at",
            "关闭时间",
            "When it was won or lost; only for status won/lost.",
            default="now when status becomes won/lost",
        ),
        _when(
            "created_at",
            "创建时间",
            "When the deal was opened.",
            clears=False,
            default="earliest of stage_entered_at, last_progress_at, now",
        ),
    ),
)

CONTRACTS = KindSpec(
    "contracts",
    "Contracts (合同)",
    "Contracts; counted as signed only with status signed AND legal approval (R10).",
    (
        _ext("contract"),
        _ref("customer", "客户", "customers", "customer", required=True),
        _ref("owner", "负责人", "users", "owning rep", required=True),
        Column(
            "opportunity",
            ColumnType.STR,
            "商机",
            "external_id of the opportunity (same customer).",
            max_length=64,
            ref="opportunities",
        ),
        Column("amount", ColumnType.DECIMAL, "合同金额", "Contract amount (yuan), e.g. 50,000.00.", required=True),
        Column(
            "status",
            ColumnType.ENUM,
            "状态",
            "draft, signed or void.",
            choices=CONTRACT_STATUSES,
            synonyms=(("草稿", "draft"), ("已签约", "signed"), ("已签", "signed"), ("作废", "void")),
            clears=False,
            default="draft",
        ),
        _when("legal_approved_at", "法务审批时间", "When legal approved it (R10)."),
        _when("signed_at", "签约时间", "Signing date; required when status is signed."),
        Column(
            "payment_terms_days",
            ColumnType.INT,
            "账期天数",
            "Payment terms in days.",
            minimum=0,
            maximum=3650,
        ),
        Column("product_line", ColumnType.STR, "产品线", "Product line.", max_length=64),
    ),
)

PAYMENTS = KindSpec(
    "payments",
    "Payments (回款)",
    "Money received against a contract; a refund is a negative amount (R7, R8).",
    (
        _ext("payment"),
        Column(
            "contract",
            ColumnType.STR,
            "合同",
            "external_id of the contract.",
            required=True,
            max_length=64,
            ref="contracts",
        ),
        Column(
            "amount",
            ColumnType.DECIMAL,
            "回款金额",
            "Amount received (yuan); negative for a refund, not 0.",
            required=True,
            allow_negative=True,
            nonzero=True,
        ),
        _when("received_at", "到账时间", "When the money arrived.", required=True),
    ),
)

# Import order: each kind only references kinds before it.
SPECS: Mapping[str, KindSpec] = MappingProxyType(
    {s.kind: s for s in (USERS, CUSTOMERS, LEADS, OPPORTUNITIES, CONTRACTS, PAYMENTS)}
)
KINDS: tuple[str, ...] = tuple(SPECS)
