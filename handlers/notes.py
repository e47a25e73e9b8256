"""R15 meeting notes: "纪要：…" (会议纪要, 记录一下 …, or a voice message's recognised text) stores the
note with its keywords and tags (competitor, budget, decision maker, pain point, timeline) and its
length (R13), linked to the customer and its open opportunity."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.channels.base import Reply, Text
from bot.dispatch.context import Context
from bot.dispatch.filters import MsgType
from bot.dispatch.router import HelpEntry, Router
from bot.nlu.intents import Intent, Parsed
from bot.nlu.text import clean
from handlers.common import (
    Answering,
    IntentIs,
    after_activity,
    customer_step,
    message_text,
    message_time,
    opportunity_for,
    question_for,
    too_long,
)
from store.models import Activity, Customer

FLOW = "note"
ASK_BODY = "纪要内容是什么？直接发给我（可以分点写）。"
SAVED = "📝 纪要已记下：{customer}，{chars} 字"
KEYWORDS = "\n关键词：{words}"
TAG_LINE = "\n{label}：{words}"
TAG_LABELS = {"competitor": "🏷 竞品", "budget": "💰 预算", "decision_maker": "👤 决策人", "pain_point": "🩹 痛点",
              "timeline": "⏰ 时间"}
VOICE_KIND = "voice"

router = Router(name=FLOW, help=(
    HelpEntry("记会议纪要（自动提取关键词）", "纪要：王总关心预算，竞品是用友，希望月底上线"),
))
# Answers to this flow's own questions: tried before every intent (see handlers/__init__.py).
answers = Router(name="notes-answers")


class Step:
    BODY = "body"
    CUSTOMER = "customer"


@router.handle(IntentIs(Intent.NOTE))
async def note(ctx: Context, parsed: Parsed) -> Reply:
    """R15: a note in one message, or its body / customer asked for."""
    ctx.state.clear()
    if not parsed.body:
        ctx.state.set(FLOW, Step.BODY)
        return Text(ASK_BODY)
    return await _with_body(ctx, parsed.body, parsed)


@router.handle(MsgType("voice"), IntentIs(Intent.UNKNOWN))
async def voice_note(ctx: Context, parsed: Parsed) -> Reply:
    """R15: a voice message whose recognised text is not a command is a note."""
    ctx.state.clear()
    return await _with_body(ctx, parsed.text, parsed)


@answers.handle(MsgType("text", "voice"), Answering(FLOW, Step.BODY))
async def answer_body(ctx: Context) -> Reply:
    text = clean(message_text(ctx) or "").strip()
    if not text:
        return Text(ASK_BODY)
    assert ctx.nlu is not None and ctx.user is not None
    parsed = await ctx.nlu.parse(ctx.session, text, ctx.now, ctx.user.id)
    ctx.state.clear()
    return await _with_body(ctx, text, parsed)


@answers.handle(MsgType("text", "voice"), Answering(FLOW, Step.CUSTOMER))
async def answer_customer_step(ctx: Context) -> Reply:
    data, picked = await customer_step(ctx, FLOW, Step.CUSTOMER)
    if not isinstance(picked, Customer):
        return picked
    ctx.state.clear()
    return await _save(ctx, data, picked)


async def _with_body(ctx: Context, body: str, parsed: Parsed) -> Reply:
    assert ctx.user is not None
    if (refused := too_long(ctx, body)) is not None:
        return refused
    data: dict[str, Any] = {"body": body, "reported_at": message_time(ctx).isoformat(), "ref": ctx.source_ref,
                            "voice": ctx.message.msg_type == VOICE_KIND}
    customer: Customer | None = None
    match = parsed.customer
    if match is None and ctx.nlu is not None:  # a voice note or an answer: look for the customer in the body
        match = ctx.nlu.parser.find_customer(body, await ctx.nlu.customer_index(ctx.session), ctx.user.id)
    if match is not None and match.chosen is not None:
        customer = await ctx.repos.customers.get(match.chosen.customer_id)
    elif match is None or not match.candidates:
        since = ctx.now - timedelta(hours=ctx.settings.capture.recent_customer_hours)
        recent = await ctx.repos.activities.recent_activity(ctx.user.id, since)
        if recent is not None and recent.customer_id is not None:
            customer = await ctx.repos.customers.get(recent.customer_id)
    if customer is None:
        question, ids = await question_for(ctx, match)
        ctx.state.set(FLOW, Step.CUSTOMER, **data, candidates=ids)
        return Text(question)
    return await _save(ctx, data, customer)


async def _save(ctx: Context, data: dict[str, Any], customer: Customer) -> Reply:
    assert ctx.user is not None and ctx.nlu is not None
    body: str = data["body"]
    found = ctx.nlu.keywords(body)
    opp = await opportunity_for(ctx, customer.id)
    activity = await ctx.repos.activities.add(Activity(
        kind="meeting", user_id=ctx.user.id, customer_id=customer.id, opportunity_id=opp.id if opp else None,
        occurred_at=datetime.fromisoformat(data["reported_at"]), note=body, note_chars=len(body),
        keywords=list(found.words), tags={k: list(v) for k, v in found.tags.items()},
        source=ctx.message.channel, source_ref=data["ref"], created_at=ctx.now, status="done",
    ))
    await after_activity(ctx, activity, customer, body)
    reply = SAVED.format(customer=customer.name, chars=len(body))
    if found.words:
        reply += KEYWORDS.format(words="、".join(found.words))
    for tag, label in TAG_LABELS.items():
        if found.tags.get(tag):
            reply += TAG_LINE.format(label=label, words="、".join(found.tags[tag]))
    return Text(reply)
