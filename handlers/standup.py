"""R16 Monday stand-up: three answers — the TOP3 stuck opportunities, whose support is needed, when it
will be solved — in one message or one question at a time; one row per rep and week, the latest wins.

"周会 1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决" is recorded at once. The parts may be numbered
(1. 1、 ① 一、 （1） 第一点), labelled (卡点： 需要支持： 预计：, any order), on lines or sentences of their
own, or just follow each other ("华远卡在预算，需要王经理陪访，12月10日前解决"): the text is cut where
its cues change from what is stuck to who can help to when. The Monday 09:00 sweep puts every rep at
`Step.ANSWER` (see `prompt_rep`), so their next text is the answer whatever it starts with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from bot.channels.base import Reply, Text
from bot.dispatch.context import Context, FlowState
from bot.dispatch.filters import MsgType
from bot.dispatch.router import HelpEntry, Router
from bot.nlu.dates import find_date, today
from bot.nlu.intents import Intent, Parsed
from bot.nlu.standup import Part, date_text, is_none, reads_as_answer, split_answer
from bot.nlu.text import blank, clean, fold, meaningful
from handlers.common import Answering, IntentIs, message_text, message_time, parsed, too_long
from store.models import StandupAnswer, User
from store.repos.conversations import ConversationRepo

FLOW = "standup"
PROMPT = ("早上好！本周周会三句话：\n1. 卡住的 TOP3 商机，卡在哪里？\n2. 需要谁的支持？\n3. 预计什么时候解决？\n"
          "直接回复就行，例如：1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决")
ASK_ALL = ("周会三句话：\n1. 卡住的 TOP3 商机，卡在哪里？\n2. 需要谁的支持？\n3. 预计什么时候解决？\n"
           "例如：1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决")
ASK_STUCK = "本周卡住的 TOP3 商机是哪些？卡在哪里？（没有的话回复「无」）"
ASK_SUPPORT = "需要谁的支持？（例如：王经理陪访；不需要的话回复「不需要」）"
ASK_RESOLVE = "预计什么时候能解决？（例如：12月10日、下周五、月底）"
ASK_RESOLVE_AGAIN = "没看懂预计解决的日期，请再说一次，例如「12月10日」「下周五」「月底」。"
PAST_DATE = "{date}已经过去了～预计哪天能解决呢？（例如：下周五、12月20日）"
RECORDED = "✅ 本周周会已记录："
REPLACED = "✅ 本周周会已更新（以这次为准）："
LINE_STUCK = "卡点：{text}{who}"
LINE_SUPPORT = "需要支持：{text}{who}"
LINE_RESOLVE = "预计解决：{date}"
NOT_GIVEN = "—"
WEEKDAYS = "一二三四五六日"

router = Router(name=FLOW, help=(
    HelpEntry("周会三句话：卡点、需要谁支持、预计解决时间", "周会 1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决"),
))
answers = Router(name="standup-answers")


class Step:
    ANSWER = "answer"  # the whole answer (the Monday question, or "周会" alone)
    STUCK = "stuck"
    SUPPORT = "support"
    RESOLVE_BY = "resolve_by"


ASKS = {Step.STUCK: Part.STUCK, Step.SUPPORT: Part.SUPPORT, Step.RESOLVE_BY: Part.RESOLVE}
MAX_CUSTOMERS = 3
FAR_AHEAD = timedelta(days=183)  # "11月20日" said on 30 Nov means the past one, not next year's

# ---------------------------------------------------------------- the Monday prompt (the sweep's contract)


def start_prompted(state: FlowState) -> None:
    """R16: the rep's next text is their stand-up answer (whatever flow they were in is left)."""
    state.clear()
    state.set(FLOW, Step.ANSWER, prompted=True)


async def prompt_rep(conversations: ConversationRepo, *, channel: str, conversation_key: str, user_id: int,
                     now: datetime, ttl: timedelta) -> None:
    """R16, for the Monday 09:00 sweep: the same state as `start_prompted`, written for a rep outside any
    message (conversation_key is the rep's platform id, e.g. the WeCom userid); send PROMPT with it."""
    await conversations.save(channel, conversation_key, user_id=user_id, flow=FLOW, step=Step.ANSWER,
                             data={"prompted": True}, now=now, ttl=ttl)


# ---------------------------------------------------------------- entry points


class _Answers:
    """The rep is in the stand-up flow and this text answers it. A leading command leaves the flow, as
    everywhere (Answering), except a check-in or stage move phrase that reads as a stand-up answer:
    "华远推进到报价卡住了" answers the Monday question, it does not move 华远's stage."""

    async def __call__(self, ctx: Context) -> bool:
        if ctx.state.flow != FLOW:
            return False
        if await Answering(FLOW)(ctx):
            return True
        result = await parsed(ctx)
        return (result is not None and result.intent in (Intent.VISIT_DONE, Intent.STAGE_MOVE)
                and reads_as_answer(result.text, result.duration_minutes))


@router.handle(IntentIs(Intent.STANDUP))
async def standup(ctx: Context, parsed: Parsed) -> Reply:
    """R16: "周会 …" — all three answers in one message, or the start of a short dialogue."""
    assert ctx.user is not None
    if (refused := too_long(ctx, parsed.text)) is not None:
        return refused
    prompted = ctx.state.flow == FLOW and bool(ctx.state.data.get("prompted"))
    data: dict[str, Any] = {"prompted": prompted, "reported_at": message_time(ctx).isoformat()}
    body = parsed.body or ""
    if not meaningful(body):
        return _ask(ctx, {**data, "raw": [parsed.text]}, Step.ANSWER, ASK_ALL)
    return await _take(ctx, data, body, parsed.text, Step.ANSWER)


@answers.handle(MsgType("text", "voice"), _Answers())
async def answer(ctx: Context) -> Reply:
    """R16: any text in the flow answers the question asked (the Monday question asks all three)."""
    text = clean(message_text(ctx) or "").strip()
    if (refused := too_long(ctx, text)) is not None:
        return refused
    data = dict(ctx.state.data)
    data.setdefault("reported_at", message_time(ctx).isoformat())
    step = ctx.state.step or Step.ANSWER
    return await _take(ctx, data, text, text, step)


# ---------------------------------------------------------------- the dialogue


async def _take(ctx: Context, data: dict[str, Any], body: str, raw: str, step: str) -> Reply:
    """Read one message's parts into the answer so far, then ask for what is missing or record it."""
    people = await ctx.repos.standups.directory()
    parts = split_answer(body, message_time(ctx), ASKS.get(step, Part.STUCK), [p.name for p in people])
    data["raw"] = [*data.get("raw", []), raw]
    data["bodies"] = [*data.get("bodies", []), body]
    question: str | None = None
    for part, text in parts.items():
        data[part.value] = text
    if Part.RESOLVE in parts:
        found = read_date(parts[Part.RESOLVE], message_time(ctx))
        if isinstance(found, date):
            data["resolve_by"] = found.isoformat()
        else:
            data.pop("resolve_by", None)
            question = found
    stuck = data.get(Part.STUCK.value)
    if stuck is None:
        return _ask(ctx, data, Step.STUCK, ASK_STUCK)
    if not is_none(stuck):
        if Part.SUPPORT.value not in data:
            return _ask(ctx, data, Step.SUPPORT, ASK_SUPPORT)
        if "resolve_by" not in data:
            return _ask(ctx, data, Step.RESOLVE_BY, question or ASK_RESOLVE)
    ctx.state.clear()
    return await _record(ctx, data, people)


def _ask(ctx: Context, data: dict[str, Any], step: str, question: str) -> Reply:
    ctx.state.clear()
    ctx.state.set(FLOW, step, **data)
    return Text(question)


async def _record(ctx: Context, data: dict[str, Any], people: Sequence[User]) -> Reply:
    """Store the week's answer (replacing an earlier one) and confirm it as stored."""
    assert ctx.user is not None and ctx.nlu is not None
    stuck: str = data[Part.STUCK.value]
    support: str | None = data.get(Part.SUPPORT.value)
    resolve_by = date.fromisoformat(data["resolve_by"]) if data.get("resolve_by") else None
    customer_ids = [] if is_none(stuck) else await _customers(ctx, stuck)
    support_ids = match_people(support, people) if support and not is_none(support) else []
    day = today(datetime.fromisoformat(data["reported_at"]))
    stored, replaced = await ctx.repos.standups.put(StandupAnswer(
        user_id=ctx.user.id, week=day - timedelta(days=day.weekday()), stuck=stuck,
        stuck_customer_ids=customer_ids, support=support, support_user_ids=support_ids, resolve_by=resolve_by,
        keywords=list(ctx.nlu.keywords("\n".join(data["bodies"])).words), raw="\n".join(data["raw"]),
        prompted=bool(data.get("prompted")), created_at=ctx.now,
    ), ctx.now)
    if ctx.user.team_id is not None:
        # R16: the last of the team to answer sends the team table now rather than at 10:00 (imported here:
        # the sweep module imports this one for the prompt).
        from jobs.sweeps.standup import table_if_all_answered

        await table_if_all_answered(ctx.session, ctx.settings, ctx.user.team_id, stored.week, ctx.now)
    customers = [c.name for cid in customer_ids if (c := await ctx.repos.customers.get(cid)) is not None]
    names = {p.id: p.name for p in people}
    lines = [
        REPLACED if replaced else RECORDED,
        LINE_STUCK.format(text=stuck, who=_aside(customers)),
        LINE_SUPPORT.format(text=support or NOT_GIVEN, who=_aside([names[i] for i in support_ids])),
        LINE_RESOLVE.format(date=date_label(resolve_by, day) if resolve_by else NOT_GIVEN),
    ]
    return Text("\n".join(lines))


async def _customers(ctx: Context, text: str) -> list[int]:
    """Every customer the stuck part names (up to 3): find one, blank its span, look again; a name that
    could be several customers is skipped."""
    assert ctx.user is not None and ctx.nlu is not None
    index = await ctx.nlu.customer_index(ctx.session)
    ids: list[int] = []
    rest = text
    for _ in range(MAX_CUSTOMERS * 2):
        match = ctx.nlu.parser.find_customer(rest, index, ctx.user.id)
        if not match.found:
            break
        hits = [match.chosen] if match.chosen is not None else list(match.candidates)
        if match.chosen is not None and match.chosen.customer_id not in ids:
            ids.append(match.chosen.customer_id)
        rest = blank(rest, [(hit.start, hit.end) for hit in hits])
        if len(ids) >= MAX_CUSTOMERS:
            break
    return ids


def _aside(names: Sequence[str]) -> str:
    return f"（{'、'.join(names)}）" if names else ""


def date_label(value: date, base: date) -> str:
    year = f"{value.year}年" if value.year != base.year else ""
    return f"{year}{value.month}月{value.day}日（周{WEEKDAYS[value.weekday()]}）"


def read_date(text: str, now: datetime) -> date | str:
    """The expected resolution date in `text`, or the question to ask instead (unreadable, or past)."""
    found = find_date(date_text(fold(text)), now)
    if found is None:
        return ASK_RESOLVE_AGAIN
    base, value = today(now), found.value
    if value > base + FAR_AHEAD and not re.search(r"\d{4}\s*年|\d{4}[/-]", fold(text)[found.start:found.end]):
        try:
            value = value.replace(year=base.year)
        except ValueError:  # 2月29日
            pass
    if value < base:
        return PAST_DATE.format(date=f"{value.month}月{value.day}日" if value.year == base.year
                                else f"{value.year}年{value.month}月{value.day}日")
    return value


# ---------------------------------------------------------------- who is asked for support


SURNAME_TITLE_RE = re.compile(
    r"(?P<surname>欧阳|司马|上官|诸葛|东方|皇甫|令狐|慕容|[\u4e00-\u9fff])(?:总经理|总监|经理|总)"
)


def match_people(text: str, people: Sequence[User]) -> list[int]:
    """The directory's people named in `text`, in text order: a full name ("王经理", "张三"), or a surname
    with a title ("王总", "李总监") when exactly one manager has that surname; a name two people share is
    skipped."""
    folded = fold(clean(text))
    by_name: dict[str, list[int]] = {}
    for person in people:
        key = fold(person.name).strip()
        if len(key) >= 2:
            by_name.setdefault(key, []).append(person.id)
    found: dict[int, int] = {}  # user id -> first position
    for name in sorted(by_name, key=len, reverse=True):
        at = folded.find(name)
        if at < 0:
            continue
        if len(by_name[name]) == 1:
            found.setdefault(by_name[name][0], at)
        folded = folded.replace(name, " " * len(name))
    for m in SURNAME_TITLE_RE.finditer(folded):
        managers = [p.id for p in people
                    if "manager" in (p.roles or []) and fold(p.name).startswith(m.group("surname"))]
        if len(managers) == 1:
            found.setdefault(managers[0], m.start())
    return sorted(found, key=lambda uid: found[uid])
