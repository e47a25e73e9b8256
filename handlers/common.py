"""What the capture flows share: the parsed intent filter, customer questions and answers, and recording an
activity with its consequences (opportunity progress R5, ownership conflict R17)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.channels.base import Reply, Text
from bot.clock import SHANGHAI
from bot.dispatch.context import Context
from bot.dispatch.filters import FilterResult
from bot.nlu.customers import MatchResult
from bot.nlu.intents import Intent, Parsed
from bot.nlu.text import clean, fold, tidy
from store.models import Activity, Customer, Opportunity

ASK_CUSTOMER = "是哪个客户呢？回复序号或客户名称："
ASK_CUSTOMER_NONE = "是哪个客户呢？请回复客户名称（新客户请回复「新客户 名称」）。"
PICK_LINE = "{n}. {name}{owner}"
PICK_FOOTER = "都不是的话，回复客户全称；新客户请回复「新客户 名称」。"
NOT_FOUND = "没找到客户「{name}」。请再确认一下名称，或回复「新客户 {name}」登记为新客户。"
TOO_LONG = "这条消息太长了（{n} 字），请控制在 {limit} 字以内，分几条发给我～"
OWNER_TOLD = "ℹ️ {rep} 刚刚记录了你的客户「{customer}」的{kind}：{summary}"
KIND_LABEL = {"visit": "拜访", "meeting": "纪要", "call": "电话", "wechat": "沟通", "doc": "文档"}
NEW_CUSTOMER_RE = re.compile(r"^\s*(?:新客户|新建客户|添加客户|new\s+customer)\s*[:：]?\s*(?P<name>.+?)\s*$")
NUMBER_RE = re.compile(r"^\s*(?:第)?(?P<n>\d{1,2}|[一二三四五六七八九十])(?:个|号)?\s*[.。、)）]?\s*$")
CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
MAX_CUSTOMER_NAME = 100
OUT_OF_RANGE = "没有这个序号，请回复 1–{n} 之间的数字，或客户名称。"
BAD_NAME = "「{name}」不像一个客户名称，请回复「新客户 + 客户全称」，例如「新客户 上海华远科技有限公司」。"
# Words that are not anyone's customer: a customer named so would capture every rep's messages.
GENERIC_NAMES = frozenset({
    "客户", "新客户", "公司", "老板", "对方", "我们", "他们", "这个", "那个", "这家", "那家", "门店", "总部", "测试",
    "test", "客户公司", "有限公司", "集团", "工厂", "项目", "商机",
})
MAX_MESSAGE_AGE = timedelta(days=2)  # inbox retries give up well within this


def message_text(ctx: Context) -> str | None:
    """The words of a message: a text's content, or a voice message's recognised text."""
    if ctx.message.msg_type == "text":
        return ctx.message.text
    if ctx.message.msg_type == "voice" and ctx.message.recognition:
        return ctx.message.recognition
    return None


def message_time(ctx: Context) -> datetime:
    """When the rep wrote it: the platform's CreateTime (a message retried after a failure keeps its
    time), unless that is in the future or implausibly old, then the processing time."""
    created = ctx.message.created_at
    return created if ctx.now - MAX_MESSAGE_AGE <= created <= ctx.now else ctx.now


async def parsed(ctx: Context) -> Parsed | None:
    """This message's intent and slots, parsed once per message."""
    if "parsed" in ctx.cache:
        result: Parsed | None = ctx.cache["parsed"]
        return result
    text = message_text(ctx)
    result = None
    if text is not None and ctx.nlu is not None and ctx.user is not None:
        # Dates ("明天", "下周三") are read from when the rep wrote, even if processing was retried later.
        result = await ctx.nlu.parse(ctx.session, text, message_time(ctx), ctx.user.id)
    ctx.cache["parsed"] = result
    return result


class IntentIs:
    """Passes when the message's intent is one of `intents` (and, with leading=True, starts the message)."""

    def __init__(self, *intents: Intent, leading: bool | None = None) -> None:
        self.intents, self.leading = set(intents), leading

    async def __call__(self, ctx: Context) -> FilterResult:
        result = await parsed(ctx)
        if result is None or result.intent not in self.intents:
            return False
        if self.leading is not None and result.leading != self.leading:
            return False
        return {"parsed": result}


# Intents that, written at the start of a message, leave whatever flow the rep was in …
COMMANDS = (Intent.NOTE, Intent.STANDUP, Intent.FORCE_MOVE, Intent.CONFIRM_ACTION, Intent.MY_PIPELINE)
# … and these too, but only when they name a customer ("见完了，客户认可" answers "结论？";
# "今日拜访完成 宏达 1小时 …" is a new check-in).
COMMANDS_WITH_CUSTOMER = (Intent.STAGE_MOVE, Intent.VISIT_ARRIVE, Intent.VISIT_DONE)


class Answering:
    """The rep is at `flow`/`step` and this message answers it (not a new command)."""

    def __init__(self, flow: str, step: str | None = None) -> None:
        self.flow, self.step = flow, step

    async def __call__(self, ctx: Context) -> bool:
        if ctx.state.flow != self.flow or (self.step is not None and ctx.state.step != self.step):
            return False
        result = await parsed(ctx)
        if result is None or not result.leading:
            return True
        if result.intent in COMMANDS:
            return False
        named = result.customer is not None and result.customer.found
        return not (result.intent in COMMANDS_WITH_CUSTOMER and named)


def too_long(ctx: Context, text: str) -> Text | None:
    limit = ctx.settings.capture.max_text_chars
    return Text(TOO_LONG.format(n=len(text), limit=limit)) if len(text) > limit else None


# ---------------------------------------------------------------- customers


@dataclass(frozen=True)
class Pick:
    """The outcome of asking for a customer: chosen, a new question (candidates), or not found."""

    customer: Customer | None = None
    candidates: tuple[int, ...] = ()
    unknown: str | None = None
    bad_name: str | None = None  # "新客户 客户": not a name that may enter everyone's customer index
    out_of_range: int = 0  # a number past the list (the list's length)


async def candidates_text(ctx: Context, ids: Sequence[int]) -> str:
    lines = [ASK_CUSTOMER]
    for n, cid in enumerate(ids, 1):
        customer = await ctx.repos.customers.get(cid)
        if customer is None:
            continue
        owner = ""
        if customer.owner_id is not None and ctx.user is not None and customer.owner_id != ctx.user.id:
            who = await ctx.repos.users.get(customer.owner_id)
            owner = f"（{who.name}的客户）" if who else ""
        lines.append(PICK_LINE.format(n=n, name=customer.name, owner=owner))
    lines.append(PICK_FOOTER)
    return "\n".join(lines)


async def question_for(ctx: Context, match: MatchResult | None) -> tuple[str, list[int]]:
    """The customer question and its candidate ids: the close matches, or the rep's recent customers."""
    if match is not None and match.candidates:
        ids = [c.customer_id for c in match.candidates]
    else:
        assert ctx.user is not None
        since = ctx.now - timedelta(days=30)
        recent = await ctx.repos.customers.recent_for_user(ctx.user.id, since, ctx.settings.capture.max_candidates)
        ids = [c.id for c in recent]
    if not ids:
        return ASK_CUSTOMER_NONE, []
    return await candidates_text(ctx, ids), ids


async def chosen_customer(ctx: Context, match: MatchResult | None) -> Customer | None:
    if match is None or match.chosen is None:
        return None
    return await ctx.repos.customers.get(match.chosen.customer_id)


async def answer_customer(ctx: Context, text: str, candidates: Sequence[int]) -> Pick:
    """Read a reply to "是哪个客户？": a number from the list, a name (fuzzy), or "新客户 名称"."""
    assert ctx.user is not None and ctx.nlu is not None
    number = NUMBER_RE.match(fold(clean(text)))
    if number is not None and candidates:
        raw = number.group("n")
        n = int(raw) if raw.isdigit() else CN_DIGITS[raw]
        if 1 <= n <= len(candidates):
            return Pick(await ctx.repos.customers.get(candidates[n - 1]))
        return Pick(out_of_range=len(candidates))
    new = NEW_CUSTOMER_RE.match(clean(text))
    if new is not None:
        name = " ".join(new.group("name").split())[:MAX_CUSTOMER_NAME]  # verbatim, whitespace collapsed
        if not plausible_name(ctx, name):
            return Pick(bad_name=name)
        if name:
            existing = await ctx.repos.customers.find_by_name(name)
            return Pick(existing or await ctx.repos.customers.create(name, ctx.user.id, ctx.now))
    index = await ctx.nlu.customer_index(ctx.session)
    match = ctx.nlu.parser.find_customer(text, index, ctx.user.id)
    if match.chosen is not None:
        return Pick(await ctx.repos.customers.get(match.chosen.customer_id))
    if match.candidates:
        return Pick(candidates=tuple(c.customer_id for c in match.candidates))
    return Pick(unknown=tidy(clean(text))[:30] or None)


def plausible_name(ctx: Context, name: str) -> bool:
    """A name a rep may create a customer with: two letters at least, not a generic word, a stage or
    key-action word, or a number."""
    folded = "".join(ch for ch in fold(clean(name)) if ch.isalnum())
    if len(folded) < 2 or folded.isdigit() or folded in GENERIC_NAMES:
        return False
    funnel = ctx.settings.funnel
    reserved = {*funnel.stages, *funnel.aliases, *(a for actions in funnel.gates.values() for a in actions)}
    return folded not in {fold(w) for w in reserved}


def not_found_text(name: str) -> str:
    return NOT_FOUND.format(name=name)


async def customer_step(ctx: Context, flow: str, step: str) -> tuple[dict[str, Any], Customer | Reply]:
    """A flow's "是哪个客户？" step: the flow's data (candidates removed) and the customer picked, or the
    reply to send instead (a narrower list of candidates, or "not found"; the flow stays at `step`)."""
    data = dict(ctx.state.data)
    pick = await answer_customer(ctx, message_text(ctx) or "", data.get("candidates", []))
    if pick.customer is None:
        if pick.candidates:
            ctx.state.set(flow, step, candidates=list(pick.candidates))
            return data, Text(await candidates_text(ctx, pick.candidates))
        if pick.out_of_range:
            return data, Text(OUT_OF_RANGE.format(n=pick.out_of_range))
        if pick.bad_name is not None:
            return data, Text(BAD_NAME.format(name=pick.bad_name[:30]))
        return data, Text(not_found_text(pick.unknown or ""))
    data.pop("candidates", None)
    return data, pick.customer


# ---------------------------------------------------------------- recording


async def opportunity_for(ctx: Context, customer_id: int) -> Opportunity | None:
    """The open opportunity an activity on this customer belongs to: the rep's own first."""
    opps = await ctx.repos.pipeline.open_for_customer(customer_id)
    if not opps:
        return None
    own = [o for o in opps if ctx.user is not None and o.owner_id == ctx.user.id]
    return (own or opps)[0]


async def after_activity(ctx: Context, activity: Activity, customer: Customer, summary: str) -> None:
    """Consequences of a new activity: the opportunity progresses (and leaves the silent pool, R5);
    the owner hears when someone else worked their customer, and ≥ N reps in the window is a conflict (R17)."""
    assert ctx.user is not None
    if activity.opportunity_id is not None:
        opp = await ctx.repos.pipeline.get(activity.opportunity_id)
        if opp is not None:
            opp.last_progress_at = max(opp.last_progress_at, ctx.now)
            if opp.status == "silent":
                opp.status = "open"
            opp.updated_at = ctx.now
    if customer.owner_id is not None and customer.owner_id != ctx.user.id:
        owner = await ctx.repos.users.get(customer.owner_id)
        if owner is not None and owner.active and owner.wecom_userid:
            kind = KIND_LABEL.get(activity.kind, "记录")
            ctx.send(owner.wecom_userid, Text(OWNER_TOLD.format(rep=ctx.user.name, customer=customer.name,
                                                                  kind=kind, summary=summary[:60])))
    capture = ctx.settings.capture
    since = ctx.now - timedelta(days=capture.conflict_window_days)
    # Two reps recording on one customer at once (two conversations, maybe two processes) must see each
    # other: the customer row is locked before counting (PostgreSQL; SQLite has one writer anyway).
    await ctx.repos.customers.lock(customer.id)
    reps = await ctx.repos.customers.reps_since(customer.id, since)
    if len(reps) >= capture.conflict_min_reps:
        period = ctx.now.astimezone(SHANGHAI).strftime("%Y-%m")
        await ctx.repos.activities.record_conflict(customer.id, period, customer.owner_id, reps, ctx.now)


def minutes_label(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours}小时{rest}分钟"
    return f"{hours}小时" if hours else f"{rest}分钟"


# ---------------------------------------------------------------- views (R8, R9, R20)

END = r"[\s?!。.~]*$"  # a view command's trailing punctuation (normalised: ？ → ?)
# A view command is short: checked first, in one pass, so a hostile 20,000-character message cannot make the
# patterns' optional target backtrack (measured: ~1 s each without it).
SHORT = r"^(?=[\s\S]{0,80}$)"


async def cached(ctx: Context, key: tuple[object, ...], build: Callable[[], Awaitable[str]]) -> str:
    """A view's text through the freshness cache (R20); marks the message read-only (its commit keeps the
    cache)."""
    ctx.read_only = True
    if ctx.views is None:
        return await build()
    return await ctx.views.get(key, ctx.now, build)
