"""R14 visit check-in (无感采集): one message when it says everything, otherwise one question at a time.

"今日拜访完成 华远科技 1小时 客户认可方案，下周报价" is recorded at once. What is missing is asked in this
order: the customer (with candidates), the duration, the one-line conclusion, the location (from a
location shared within `location_max_age_minutes`, or asked for; "跳过" skips it). "到达华远" opens a
visit; "拜访完成" closes it and the duration is the time in between. A next step with a date becomes a
follow-up task.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bot.channels.base import Reply, Text
from bot.clock import SHANGHAI
from bot.dispatch.context import Context
from bot.dispatch.filters import Event, MsgType, normalize
from bot.dispatch.router import HelpEntry, Router
from bot.nlu.clauses import next_step_of
from bot.nlu.intents import Intent, Parsed
from bot.nlu.quantities import find_duration
from bot.nlu.text import clean, fold, meaningful, tidy
from handlers.common import (
    Answering,
    IntentIs,
    after_activity,
    chosen_customer,
    customer_step,
    message_text,
    message_time,
    minutes_label,
    opportunity_for,
    question_for,
    too_long,
)
from store.models import Activity, Customer, FollowUpTask
from store.repos.scores import active_for

FLOW = "checkin"
ASK_DURATION = "这次拜访大概多长时间？（例如：1小时、45分钟、一个半小时）"
ASK_DURATION_AGAIN = "没看懂时长，请再说一次，例如「1小时」或「45分钟」（最长 {max}）。"
ASK_CONCLUSION = "一句话说说这次拜访的结论？（例如：客户认可方案，下周报价）"
CONCLUSION_REQUIRED = "结论不能跳过哦，一句话就行（例如：客户认可方案，下周报价）。只有位置可以跳过。"
ASK_LOCATION = "📍 请发一下你的位置（输入框旁「+」→「位置」），不方便的话回复「跳过」。"
ASK_LOCATION_AGAIN = "还差位置：请发送位置，或回复「跳过」（只有位置可以跳过）。"
DONE = "✅ 已记录拜访：{customer}｜{duration}｜{place}\n结论：{conclusion}"
DONE_CONTACT = "（见了{contact}）"
TASK_LINE = "\n📌 已建跟进任务：{due}（{weekday}）{title}"
NO_PLACE = "未定位"
ARRIVED = "📍 已签到「{customer}」（{time}）。结束后发「拜访完成 + 一句话结论」就好，时长我来算。"
ARRIVED_AGAIN = "你在 {time} 已经签到「{customer}」了。结束后发「拜访完成 + 一句话结论」。"
WEEKDAYS = "一二三四五六日"
SKIP_WORDS = ("跳过", "不用", "不发", "skip", "没有", "无", "不方便")
SKIP_SET = frozenset(SKIP_WORDS)
NO_DURATION = "时长免填"  # R11
LABEL_MAX = 200  # activities.location_label

router = Router(name=FLOW, help=(
    HelpEntry("记录拜访（一条消息）", "今日拜访完成 华远科技 1小时 客户认可方案，下周报价"),
    HelpEntry("到达客户处签到，结束时自动算时长", "到达华远 → 拜访完成 客户认可方案"),
))
# Answers to this flow's own questions: tried before every intent (see handlers/__init__.py).
answers = Router(name="checkin-answers")


class Step:
    CUSTOMER = "customer"
    DURATION = "duration"
    CONCLUSION = "conclusion"
    LOCATION = "location"


# ---------------------------------------------------------------- entry points


@router.handle(IntentIs(Intent.VISIT_DONE))
async def visit_done(ctx: Context, parsed: Parsed) -> Reply:
    """R14: a finished visit, from one message or the start of a short dialogue."""
    assert ctx.user is not None
    if (refused := too_long(ctx, parsed.text)) is not None:
        return refused
    capture = ctx.settings.capture
    data: dict[str, Any] = {"mode": "done", "reported_at": message_time(ctx).isoformat(), "ref": ctx.source_ref}
    since = ctx.now - timedelta(hours=capture.open_visit_max_hours)
    open_visit = await ctx.repos.activities.open_visit(ctx.user.id, since)
    customer = await chosen_customer(ctx, parsed.customer)
    if customer is None and open_visit is not None and not (parsed.customer and parsed.customer.found):
        customer = await ctx.repos.customers.get(open_visit.customer_id) if open_visit.customer_id else None
    if customer is not None:
        data["customer_id"] = customer.id
    if open_visit is not None and customer is not None and open_visit.customer_id == customer.id:
        data["open_visit_id"] = open_visit.id
        derived = max(1, int((message_time(ctx) - open_visit.occurred_at).total_seconds() // 60))
        if parsed.duration_minutes is None and derived <= capture.max_visit_minutes:
            data["duration"] = derived
        if open_visit.lat is not None:
            data["location"] = {"lat": open_visit.lat, "lng": open_visit.lng, "label": open_visit.location_label}
    if parsed.duration_minutes is not None and parsed.duration_minutes <= capture.max_visit_minutes:
        data["duration"] = parsed.duration_minutes
    for key in ("conclusion", "next_step", "contact"):
        if getattr(parsed, key):
            data[key] = getattr(parsed, key)
    if parsed.next_date is not None:
        data["next_date"] = parsed.next_date.isoformat()
    ctx.state.clear()
    if customer is None:
        question, ids = await question_for(ctx, parsed.customer)
        ctx.state.set(FLOW, Step.CUSTOMER, **data, candidates=ids)
        return Text(question)
    return await _advance(ctx, data)


@router.handle(IntentIs(Intent.VISIT_ARRIVE))
async def arrive(ctx: Context, parsed: Parsed) -> Reply:
    """R14: "到达华远" opens a visit; its location is the one shared recently (or none yet)."""
    assert ctx.user is not None
    data: dict[str, Any] = {"mode": "arrive", "reported_at": message_time(ctx).isoformat(), "ref": ctx.source_ref}
    customer = await chosen_customer(ctx, parsed.customer)
    ctx.state.clear()
    if customer is None:
        question, ids = await question_for(ctx, parsed.customer)
        ctx.state.set(FLOW, Step.CUSTOMER, **data, candidates=ids)
        return Text(question)
    return await _open_visit(ctx, customer, data)


# ---------------------------------------------------------------- answers, one step at a time


@answers.handle(MsgType("text", "voice"), Answering(FLOW, Step.CUSTOMER))
async def answer_customer_step(ctx: Context) -> Reply:
    data, picked = await customer_step(ctx, FLOW, Step.CUSTOMER)
    if not isinstance(picked, Customer):
        return picked
    data["customer_id"] = picked.id
    if data.get("conclusion"):
        data["conclusion"] = _without_name(data["conclusion"], message_text(ctx) or "")
    if data.get("mode") == "arrive":
        ctx.state.clear()
        return await _open_visit(ctx, picked, data)
    return await _advance(ctx, data)


@answers.handle(MsgType("text", "voice"), Answering(FLOW, Step.DURATION))
async def answer_duration(ctx: Context) -> Reply:
    data = dict(ctx.state.data)
    text = fold(clean(message_text(ctx) or ""))
    limit = ctx.settings.capture.max_visit_minutes
    found = find_duration(text)
    minutes = int(found.value) if found is not None else _bare_number_minutes(text)
    if minutes is None or not 0 < minutes <= limit:
        return Text(ASK_DURATION_AGAIN.format(max=minutes_label(limit)))
    data["duration"] = minutes
    return await _advance(ctx, data)


@answers.handle(MsgType("text", "voice"), Answering(FLOW, Step.CONCLUSION))
async def answer_conclusion(ctx: Context) -> Reply:
    data = dict(ctx.state.data)
    text = tidy(clean(message_text(ctx) or ""))
    if (refused := too_long(ctx, text)) is not None:
        return refused
    if _is_skip(text) or not meaningful(text) or len(text) < 2:
        return Text(CONCLUSION_REQUIRED)  # R14: the conclusion is a core field; only the location may be skipped
    data["conclusion"] = text
    if "next_date" not in data:
        due, step = next_step_of(text, ctx.now)
        if due is not None:
            data["next_date"], data["next_step"] = due.isoformat(), step or text
    return await _advance(ctx, data)


@answers.handle(MsgType("location"), Answering(FLOW, Step.LOCATION))
@answers.handle(Event("location"), Answering(FLOW, Step.LOCATION))
async def answer_location(ctx: Context) -> Reply | None:
    loc = ctx.message.location
    data = dict(ctx.state.data)
    if loc is None:
        return None
    data["location"] = {"lat": loc.lat, "lng": loc.lng, "label": _label(loc.label)}
    return await _advance(ctx, data)


@answers.handle(MsgType("text", "voice"), Answering(FLOW, Step.LOCATION))
async def skip_or_ask_location(ctx: Context) -> Reply:
    """跳过 (typed or said) skips the location, the only piece that may be skipped (R14)."""
    if not _is_skip(message_text(ctx) or ""):
        return Text(ASK_LOCATION_AGAIN)
    data = dict(ctx.state.data)
    data["location_skipped"] = True
    return await _advance(ctx, data)


# ---------------------------------------------------------------- the dialogue


async def _advance(ctx: Context, data: dict[str, Any]) -> Reply:
    """Ask for the first missing piece, or record the visit."""
    if "customer_id" not in data:
        question, ids = await question_for(ctx, None)
        ctx.state.set(FLOW, Step.CUSTOMER, **data, candidates=ids)
        return Text(question)
    exempt = await _exempt(ctx)
    if "duration" not in data and "duration" not in exempt:
        ctx.state.set(FLOW, Step.DURATION, **data)
        return Text(ASK_DURATION)
    if not data.get("conclusion"):
        ctx.state.set(FLOW, Step.CONCLUSION, **data)
        return Text(ASK_CONCLUSION)
    if "location" not in data and not data.get("location_skipped"):
        loc = await _recent_location(ctx)
        if loc is None and "location" in exempt:
            loc = {}  # R11: exempt this week — recorded without one, not asked
        if loc is None:
            ctx.state.set(FLOW, Step.LOCATION, **data)
            return Text(ASK_LOCATION)
        data["location"] = loc
    ctx.state.clear()
    return await _record(ctx, data)


async def _exempt(ctx: Context) -> frozenset[str]:
    """R11: the non-core fields this rep need not give this week (never the customer or the conclusion)."""
    assert ctx.user is not None
    row = await active_for(ctx.session, ctx.user.id, ctx.now)
    return frozenset(row.fields) if row is not None else frozenset()


async def _recent_location(ctx: Context) -> dict[str, Any] | None:
    # From when the rep wrote, not when it was processed (an inbox retry must not lose the location).
    since = message_time(ctx) - timedelta(minutes=ctx.settings.capture.location_max_age_minutes)
    loc = await ctx.repos.activities.last_location(ctx.message.channel, ctx.message.sender, since)
    return {"lat": loc.lat, "lng": loc.lng, "label": _label(loc.label)} if loc is not None else None


async def _record(ctx: Context, data: dict[str, Any]) -> Reply:
    """Write the visit (or finish the open one), its follow-up task and its consequences, in this unit of work."""
    assert ctx.user is not None
    customer = await ctx.repos.customers.get(int(data["customer_id"]))
    if customer is None:  # deleted meanwhile
        question, ids = await question_for(ctx, None)
        data.pop("customer_id")
        ctx.state.set(FLOW, Step.CUSTOMER, **data, candidates=ids)
        return Text(question)
    reported_at = datetime.fromisoformat(data["reported_at"])
    minutes = int(data["duration"]) if data.get("duration") is not None else None  # None: R11 exempt
    loc = data.get("location") or {}
    activity: Activity | None = None
    if data.get("open_visit_id"):
        activity = await ctx.session.get(Activity, int(data["open_visit_id"]))
        if activity is not None and activity.status != "open":
            activity = None
    if activity is None:
        opp = await opportunity_for(ctx, customer.id)
        activity = await ctx.repos.activities.add(Activity(
            kind="visit", user_id=ctx.user.id, customer_id=customer.id, opportunity_id=opp.id if opp else None,
            occurred_at=reported_at - timedelta(minutes=minutes or 0), source=_source(ctx), source_ref=data["ref"],
            created_at=ctx.now, status="open",
        ))
    activity.status, activity.duration_minutes, activity.updated_at = "done", minutes, ctx.now
    activity.conclusion = data["conclusion"]
    activity.contact = data.get("contact")
    if loc:
        activity.lat, activity.lng, activity.location_label = loc.get("lat"), loc.get("lng"), loc.get("label")
    task_line = ""
    if data.get("next_date"):
        due = date.fromisoformat(data["next_date"])
        title = data.get("next_step") or data["conclusion"]
        await ctx.repos.activities.add_task(FollowUpTask(
            user_id=ctx.user.id, customer_id=customer.id, opportunity_id=activity.opportunity_id,
            activity_id=activity.id, title=title, due_on=due, created_at=ctx.now,
        ))
        task_line = TASK_LINE.format(due=f"{due.month}月{due.day}日", weekday="周" + WEEKDAYS[due.weekday()],
                                     title=title)
    await after_activity(ctx, activity, customer, data["conclusion"])
    place = loc.get("label") or (f"{loc['lat']:.4f},{loc['lng']:.4f}" if loc.get("lat") is not None else NO_PLACE)
    who = DONE_CONTACT.format(contact=activity.contact) if activity.contact else ""
    return Text(DONE.format(customer=customer.name + who, duration=minutes_label(minutes) if minutes else NO_DURATION,
                            place=place,
                            conclusion=data["conclusion"]) + task_line)


async def _open_visit(ctx: Context, customer: Customer, data: dict[str, Any]) -> Reply:
    assert ctx.user is not None
    capture = ctx.settings.capture
    reported_at = datetime.fromisoformat(data["reported_at"])
    since = ctx.now - timedelta(hours=capture.open_visit_max_hours)
    open_visit = await ctx.repos.activities.open_visit(ctx.user.id, since)
    if open_visit is not None and open_visit.customer_id == customer.id:
        return Text(ARRIVED_AGAIN.format(time=_hhmm(open_visit.occurred_at), customer=customer.name))
    loc = await _recent_location(ctx) or {}
    opp = await opportunity_for(ctx, customer.id)
    await ctx.repos.activities.add(Activity(
        kind="visit", status="open", user_id=ctx.user.id, customer_id=customer.id,
        opportunity_id=opp.id if opp else None, occurred_at=reported_at, source=_source(ctx),
        source_ref=data["ref"], created_at=ctx.now, lat=loc.get("lat"), lng=loc.get("lng"),
        location_label=loc.get("label"),
    ))
    return Text(ARRIVED.format(customer=customer.name, time=_hhmm(reported_at)))


def _hhmm(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%H:%M")


def _source(ctx: Context) -> str:
    return ctx.message.channel  # wecom | dingtalk | local (the simulator)


def _label(label: str | None) -> str | None:
    """A place name as WeCom sends it, cut to what activities.location_label holds."""
    return label[:LABEL_MAX] if label else None


def _is_skip(text: str) -> bool:
    return normalize(text).rstrip("!?。！？.~") in SKIP_SET


def _bare_number_minutes(text: str) -> int | None:
    """A bare "45" answers "多长时间" in minutes; "1" or "1.5" (≤ 10) in hours."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return round(value * 60) if value <= 10 else round(value)


def _without_name(conclusion: str, name: str) -> str:
    """A conclusion that began with the (then unknown) customer name loses it once the name is resolved."""
    name = tidy(name)
    if name and conclusion.startswith(name):
        rest = tidy(conclusion[len(name):])
        return rest or conclusion
    return conclusion
