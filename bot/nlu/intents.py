"""Intent + slots from one chat message (R6, R14, R15, R16): rules over jieba tokens, not exact phrases.

A message is cleaned (bot/nlu/text.py, positions kept), cut into tokens by the process's jieba
Lexicon, and tried against the rules in priority order:

1. commands that lead the message — 强制推进 (force move), 纪要/会议纪要/记录一下 (note), 周会 (stand-up),
   确认 <关键动作> (sign-off), 我的商机 (pipeline);
2. a move verb followed by a stage word — "华远 进入 报价" (stage move), unless words saying a visit is
   done come first ("拜访完成 华远 1小时 客户同意进入报价" is a check-in);
3. an arrival verb — "到达华远" (visit start), not in a question ("到华远还要多久");
4. a visit verb with a completion or recency marker — "今日拜访完成", "刚见完华远的王总", "visit done";
   a trip to a named customer — "去了趟宏达零售", "刚从华远出来"; or a visit verb among the first words
   with a duration after it and nothing saying it is planned — "拜访华远科技，1h，…".

Slots are read by span: the customer (CustomerIndex), the duration and amount (quantities), dates
(dates), who was met ("王总", "的店长", "王总和李经理"); what is left of a check-in is its one-line
conclusion. Characters NFKC expands ("…") are blanked for the quantity and date finders only, so their
spans stay this text's spans.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from bot.config import CaptureSettings, FunnelSettings
from bot.nlu.customers import CustomerIndex, MatchResult
from bot.nlu.dates import FoundDate, find_date, today
from bot.nlu.numerals import BIG_UNITS, DIGITS, NUMERAL_CHARS
from bot.nlu.quantities import Found, find_amount, find_duration
from bot.nlu.text import blank, clean, fold, tidy


class Tokenizer(Protocol):
    def cut(self, text: str) -> list[str]: ...


class Intent(StrEnum):
    VISIT_DONE = "visit_done"
    VISIT_ARRIVE = "visit_arrive"
    NOTE = "note"
    STAGE_MOVE = "stage_move"
    FORCE_MOVE = "force_move"
    CONFIRM_ACTION = "confirm_action"
    STANDUP = "standup"
    MY_PIPELINE = "my_pipeline"
    UNKNOWN = "unknown"


# ---------------------------------------------------------------- vocabulary (token level)

# Visit verbs, and tokens that already say the visit is over.
VISIT_VERBS = frozenset({
    "拜访", "见", "见了", "面谈", "走访", "上门", "见面", "会面", "拜会", "会谈", "洽谈", "面见", "约见",
    "回访", "出访", "visit", "visiting", "visited", "met", "meet", "meeting", "聊", "聊了", "谈", "谈了", "去",
})
# English puts the completion first: "done visiting acme", "finished the visit".
LEADING_DONE_WORDS = frozenset({"done", "finished", "completed"})
ENGLISH_VISIT_VERBS = frozenset({"visit", "visiting", "meeting"})
VISIT_DONE_WORDS = frozenset({
    "拜访完成", "拜访完", "拜访结束", "见完", "聊完", "谈完", "面谈完", "拜访完毕", "访完", "见过", "见完面", "碰完面",
    "拜访记录", "拜访小结", "拜访总结", "拜访反馈",
})
# "拜访华远科技，1h，王总对方案满意": a visit verb and a duration report a visit even without 完成 — unless
# the words around say it is still to come ("明天拜访华远 1小时") or ask something.
REPORT_VERBS = frozenset({"拜访", "走访", "面谈", "会面", "拜会", "回访", "上门", "洽谈", "会谈", "面见"})
REPORT_NOUNS = frozenset({"记录", "小结", "总结", "反馈", "情况", "汇报"})
FUTURE_RE = re.compile(
    r"明天|明日|后天|下周|下个?星期|下个?礼拜|下个?月|月底|周[一二三四五六日天末]|星期|礼拜|\d+\s*[号日]|准备|计划|打算|安排"
    r"|将要|即将|要去|想去|约了|预约|待会|等会|一会|稍后|回头|下次|改天|再去"
)
# Tokens that still belong to the visit words after them: "见完面了", "拜访完成啦".
TRIGGER_TAIL = frozenset({"了", "啦", "面", "面了"})
DONE_MARKERS = frozenset({"完成", "完", "完了", "结束", "完毕", "好了", "done", "finished", "回来", "出来", "过"})
# "拜访了", "见了": a strong visit verb with 了 right after it is a past visit.
PAST_PARTICLES = frozenset({"了", "过了"})
# Verb and completion glued in one token jieba does not know ("见完华" cut as 见/完华): read by characters.
# 见 inside 意见/看见/再见 … is not a visit ("客户意见完全一致").
GLUED_DONE_RE = re.compile(
    r"(?:拜访|(?<![意看听遇可预常偏高罕少再起只瞧梦主成政短拙浅卓远创所不未易])见|面谈|走访|会面|见面|拜会|洽谈|聊|谈)"
    r"(?:完成|完毕|完了|结束|过了|完)(?:面了?)?|碰(?:了个?|完|过)面了?"
)
RECENT_MARKERS = frozenset({"刚", "刚刚", "刚才", "已", "已经", "今天", "今日", "上午", "下午", "中午", "晚上"})
# "聊"/"谈"/"去" alone are too common: they count only with a marker right after them.
WEAK_VERBS = frozenset({"聊", "聊了", "谈", "谈了", "去"})
ARRIVE_RE = re.compile(
    r"^\s*(?:我)?(?:已经|已)?(?:到达|抵达|已到|签到|arrived(?:\s+at)?|check\s*in|(?P<weak>到了|到))\s*[:：]?\s*"
)
ARRIVE_TAIL_RE = re.compile(r"(?:我)?(?:已经)?(?:到了|已到|到达了?|签到)\s*$")
# "去了趟宏达零售", "跑了一趟华远", "从华远出来": a visit only when a known customer is named right there.
WENT_RE = re.compile(r"(?:去|跑)(?:了\s*(?:一\s*)?趟?|\s*(?:一\s*)?趟)\s*")
CAME_OUT_RE = re.compile(r"从\s*(?P<place>[^\s,，。;；]{2,30}?)\s*(?:那边|那儿|这边)?\s*(?:出来|回来|离开)")
# A question or a failure is not a statement: "到华远还要多久", "签到失败了", "纪要怎么写", "周会几点开".
QUESTION_RE = re.compile(r"[?？]|吗|多久|多远|怎么|几点|哪里|在哪|什么|为什么|如何|是不是|能不能|失败|没到|不到|还没")
NOT_YET_RE = re.compile(r"(?:快|快要|马上|就要|即将)\s*$")
QUESTION_LEAD_RE = re.compile(r"\s*(?:怎么|如何|几点|什么|啥|在哪|哪|要不要|能不能|是不是|可以吗|吗|呢|[?？])")
MOVE_EN_RE = re.compile(r"\b(?:move|advance|push)\s+(?P<what>\S.*?)\s+(?:to|into)\s+")
MOVE_RE = re.compile(
    r"(?:进入|推进到|推进至|推到|推进|转入|进到|进阶到|升级到|转到|移到|移入|改到|改为|调到|推至|进|到了|到"
    r"|move\s+to|advance\s+to|->|→|=>)\s*"
)
NEXT_STAGE_RE = re.compile(r"下一(?:个)?阶段|下个阶段|next\s+stage")
FORCE_RE = re.compile(r"^\s*(?:强制推进|强制进入|强制转入|强推|强制|force(?:\s+move)?)\s*[:：,，]?\s*")
NOTE_RE = re.compile(
    r"^\s*(?:今天的?|今日)?(?:会议纪要|拜访纪要|纪要|会议记录|记录一下|记一下|记录|备忘|笔记|小结"
    r"|meeting\s+notes?|notes?)\s*[:：,，-]?\s*"
)
STANDUP_RE = re.compile(r"^\s*(?:周会|站会|周例会|例会|本周卡点|stand\s*-?\s*up)\s*[:：,，-]?\s*")
CONFIRM_RE = re.compile(
    r"^\s*(?:签字确认|确认签字|已确认|确认|签字|sign\s*-?\s*off|confirm)\s*(?:一下)?\s*[:：,，]?\s*"
)
# What a key action is called when it is not one of the configured names: a document or a recorded step.
ACTION_NOUN_RE = re.compile(r"(?:报告|页|单|表|书|记录|提交|归档|文档|文件|方案|清单|确认|纪要|合同|协议|函)$")
PIPELINE_RE = re.compile(
    r"^\s*(?:看看|看下|看一下|查看|查一下|查下|查查|列出|列一下|给我看看|show)?\s*(?:我的|我|my\s)\s*(?:所有|全部)?\s*"
    r"(?:商机|项目|漏斗|pipeline)(?:列表|情况|进展)?\s*(?:都?有哪些|有什么|怎么样了?)?\s*[?？!！。.]*\s*$"
    r"|^\s*(?:商机列表|我有哪些商机|my\s+pipeline|pipeline)\s*[?？!！。.]*\s*$"
)
REASON_RE = re.compile(r"(?:原因|理由|因为|reason)\s*[:：,，]?\s*")
_TITLED = r"[^\W\d的和跟与同及是个a-z](?:总监|总经理|总|经理|主任|局长|处长|部长|科长|董事长|董|工|老师|博士|主管)"
CONTACT_RE = re.compile(
    rf"(?:的|和|跟|与|同)?\s*(?P<who>{_TITLED})"
    # a role without a surname counts after 的: "宏达零售的店长", "德胜的老板"
    r"|的\s*(?P<role>店长|老板|老总|负责人|总经理|董事长|采购|ceo|cto|cio|cfo)(?![a-z])"
)
# More people met: "王总和李经理", "王总、李经理".
MAX_CONTACTS = 5  # the contact slot stays short (activities.contact holds 64 characters)
MORE_CONTACTS_RE = re.compile(rf"\s*(?:和|跟|与|及|、)\s*(?P<who>{_TITLED})")
# A leftover piece made only of these says nothing: it is not part of the conclusion.
FILLER_PIECE_RE = re.compile(
    r"(?:今天|今日|刚刚|刚才|刚|去了|去|了|啦|聊了|聊|时长|用时|共计|共|约|大概|左右|在|和|跟|与|的|到|过|客户了|客户"
    r"|一下|那边|客户处|待了|呆了|小时|分钟|将近|差不多|大约|接近|today|just)+"
)
# A field label reps copy from a template ("结论：客户认可", "备注: …"): not part of the text.
LABEL_RE = re.compile(r"^(?:结论|总结|结果|小结|备注|情况|进展|内容|反馈|conclusion|summary|notes?)\s*[:：]\s*", re.I)
ELLIPSES = "…⋯"
# The words for today describe the visit itself, not a next step ("今天拜访了华远", "今天去了星辰").
TODAY_WORDS = frozenset({"今天", "今日"})
# Clause ends for a next step: punctuation, but not the comma inside "50,000".
CLAUSE_SEP_RE = re.compile(r"[，。;；！!？?\n]|(?<!\d),|,(?!\d{3}(?!\d))")
BIG_NUMERAL_RE = re.compile(rf"[{NUMERAL_CHARS}]*[{''.join(DIGITS)}][{NUMERAL_CHARS}]*")
LEADING_TIME_RE = re.compile(r"(?:今天|今日|刚刚|刚才|刚|已经|已|上午|下午|中午|晚上)\s*$")

EXAMPLES: dict[Intent, tuple[str, ...]] = {
    Intent.VISIT_DONE: ("今日拜访完成 华远科技 1小时 客户认可方案，下周报价", "刚见完华远的王总"),
    Intent.VISIT_ARRIVE: ("到达华远",),
    Intent.NOTE: ("纪要：王总关心预算和上线时间",),
    Intent.STAGE_MOVE: ("华远 进入 报价",),
    Intent.FORCE_MOVE: ("强制推进 华远 报价 原因：客户老板已口头拍板",),
    Intent.CONFIRM_ACTION: ("确认 需求调研报告",),
    Intent.STANDUP: ("周会 1.华远卡在预算 2.需要王经理陪访 3.12月10日前解决",),
    Intent.MY_PIPELINE: ("我的商机",),
}


@dataclass(frozen=True)
class Parsed:
    """What one message says. `leading`: the intent's trigger starts the message (a command)."""

    intent: Intent
    text: str
    leading: bool = False
    customer: MatchResult | None = None
    duration_minutes: int | None = None
    conclusion: str | None = None
    next_date: date | None = None
    next_step: str | None = None
    contact: str | None = None
    stage: str | None = None
    next_stage: bool = False
    reason: str | None = None
    key_action: str | None = None
    key_action_text: str | None = None
    body: str | None = None
    amount: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def slots(self) -> dict[str, Any]:
        """The filled slots by name (customer as its chosen name or its candidates' names)."""
        out: dict[str, Any] = {}
        if self.customer is not None and self.customer.found:
            out["customer"] = (
                self.customer.chosen.name if self.customer.chosen else [c.name for c in self.customer.candidates]
            )
        for name in ("duration_minutes", "conclusion", "next_date", "next_step", "contact", "stage", "reason",
                     "key_action", "body", "amount"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.next_stage:
            out["next_stage"] = True
        return out


@dataclass(frozen=True)
class _Token:
    word: str
    start: int
    end: int


class IntentParser:
    """Rules built once from the funnel settings; `parse` is pure given its inputs."""

    def __init__(self, tokenizer: Tokenizer, funnel: FunnelSettings, capture: CaptureSettings) -> None:
        self.tokenizer = tokenizer
        self.capture = capture
        words = {fold(s): s for s in funnel.stages}
        words.update({fold(w): s for w, s in funnel.aliases.items()})
        self.stage_words = sorted(words.items(), key=lambda kv: -len(kv[0]))
        names = {a for actions in funnel.gates.values() for a in actions}
        self.key_actions = sorted(names, key=len, reverse=True)

    # ------------------------------------------------------------------ entry point

    def parse(
        self, text: str, now: datetime, customers: CustomerIndex, *, user_id: int | None = None
    ) -> Parsed:
        original = clean(text)
        folded = fold(original)
        for rule in (self._force, self._note, self._standup, self._confirm, self._pipeline):
            found = rule(original, folded, now, customers, user_id)
            if found is not None:
                return found
        tokens = self._tokens(folded)
        for token_rule in (self._stage_move, self._arrive, self._visit_done):
            found = token_rule(original, folded, tokens, now, customers, user_id)
            if found is not None:
                return found
        return Parsed(Intent.UNKNOWN, text=original.strip())

    def find_customer(self, text: str, customers: CustomerIndex, user_id: int | None) -> MatchResult:
        return self._customer(fold(clean(text)), customers, user_id)

    def _customer(self, folded: str, customers: CustomerIndex, user_id: int | None) -> MatchResult:
        """find_customer for text that is already folded (the parser's own spans: no second pass)."""
        c = self.capture
        return customers.find(
            folded, prefer_owner=user_id, threshold=c.customer_match_threshold,
            margin=c.customer_ambiguity_margin, limit=c.max_candidates,
        )

    def match_key_action(self, text: str, known: Iterable[str] = ()) -> str | None:
        """The key action a rep names ("需求调研报告", "调研报告", "签字页"): exact, contained, or close."""
        folded = fold(clean(text)).replace(" ", "")
        if not folded:
            return None
        names = sorted({*self.key_actions, *known}, key=len, reverse=True)
        for name in names:
            if fold(name).replace(" ", "") in folded:
                return name
        contained = [n for n in names if len(folded) >= 2 and folded in fold(n)]
        if len(contained) == 1:
            return contained[0]
        scored = sorted(((difflib.SequenceMatcher(None, folded, fold(n)).ratio(), n) for n in names), reverse=True)
        if scored and scored[0][0] >= 0.6 and (len(scored) == 1 or scored[0][0] - scored[1][0] > 0.05):
            return scored[0][1]
        return None

    def find_stage(self, folded: str, start: int = 0) -> tuple[str, int, int] | None:
        """The first stage word at or after `start`: (stage, start, end)."""
        best: tuple[str, int, int] | None = None
        for word, stage in self.stage_words:
            at = folded.find(word, start)
            if at >= 0 and (best is None or at < best[1]):
                best = (stage, at, at + len(word))
        return best

    def suggestions(self, text: str, limit: int = 2) -> list[str]:
        """The example phrases closest to what was said (for a not-understood reply)."""
        grams = _bigrams(fold(clean(text)))
        scored: list[tuple[float, str]] = []
        for examples in EXAMPLES.values():
            for example in examples:
                other = _bigrams(fold(example))
                union = grams | other
                scored.append((len(grams & other) / len(union) if union else 0.0, example))
        scored.sort(key=lambda item: -item[0])
        return [example for _, example in scored[:limit]]

    # ------------------------------------------------------------------ leading commands

    def _force(self, original: str, folded: str, now: datetime, customers: CustomerIndex,
               user_id: int | None) -> Parsed | None:
        m = FORCE_RE.match(folded)
        if m is None or not folded[m.end():].strip():
            return None
        rest_start = m.end()
        reason: str | None = None
        end = len(folded)
        r = REASON_RE.search(folded, rest_start)
        if r is not None:
            reason = tidy(original[r.end():]) or None
            end = r.start()
        body = folded[:end]
        stage = self.find_stage(body, rest_start)
        customer = self._customer(blank(body[: stage[1]] if stage else body, [(0, rest_start)]), customers,
                                      user_id)
        if reason is None and stage is not None:
            tail = tidy(original[stage[2]:end])
            reason = tail or None
        return Parsed(Intent.FORCE_MOVE, original.strip(), leading=True, customer=customer,
                      stage=stage[0] if stage else None, next_stage=bool(NEXT_STAGE_RE.search(body)), reason=reason)

    def _note(self, original: str, folded: str, now: datetime, customers: CustomerIndex,
              user_id: int | None) -> Parsed | None:
        m = NOTE_RE.match(folded)
        if m is None or QUESTION_LEAD_RE.match(folded, m.end()):
            return None
        body = original[m.end():].strip()
        lead = m.end() + len(original[m.end():]) - len(original[m.end():].lstrip())
        customer = self._customer(folded[lead : lead + len(body)], customers, user_id) if body else None
        return Parsed(Intent.NOTE, original.strip(), leading=True, customer=customer, body=body or None)

    def _standup(self, original: str, folded: str, now: datetime, customers: CustomerIndex,
                 user_id: int | None) -> Parsed | None:
        m = STANDUP_RE.match(folded)
        if m is None or QUESTION_LEAD_RE.match(folded, m.end()):
            return None
        body = original[m.end():].strip()
        return Parsed(Intent.STANDUP, original.strip(), leading=True, body=body or None)

    def _confirm(self, original: str, folded: str, now: datetime, customers: CustomerIndex,
                 user_id: int | None) -> Parsed | None:
        m = CONFIRM_RE.match(folded)
        if m is None:
            return None
        rest = original[m.end():]
        customer = self._customer(folded[m.end():], customers, user_id)
        without_customer = rest
        if customer.chosen is not None:
            without_customer = blank(fold(rest), [(customer.chosen.start, customer.chosen.end)])
        action = self.match_key_action(without_customer)
        named = tidy(without_customer)
        if action is None and not (customer.found and not named) and not ACTION_NOUN_RE.search(named):
            return None  # "确认收到", "确认一下明天的会": not a sign-off
        return Parsed(Intent.CONFIRM_ACTION, original.strip(), leading=True, customer=customer,
                      key_action=action, key_action_text=tidy(without_customer) or None)

    def _pipeline(self, original: str, folded: str, now: datetime, customers: CustomerIndex,
                  user_id: int | None) -> Parsed | None:
        if PIPELINE_RE.search(folded) is None:
            return None
        return Parsed(Intent.MY_PIPELINE, original.strip(), leading=True)

    # ------------------------------------------------------------------ token rules

    def _tokens(self, folded: str) -> list[_Token]:
        tokens: list[_Token] = []
        cursor = 0
        for word in self.tokenizer.cut(folded):
            if not word.strip():
                continue
            at = folded.find(word, cursor)
            if at < 0:
                continue
            tokens.append(_Token(word, at, at + len(word)))
            cursor = at + len(word)
        return tokens

    def _stage_move(self, original: str, folded: str, tokens: Sequence[_Token], now: datetime,
                    customers: CustomerIndex, user_id: int | None) -> Parsed | None:
        en = MOVE_EN_RE.search(folded)  # "move 华远 to 报价"
        if en is not None:
            stage = self.find_stage(folded, en.end())
            next_stage = NEXT_STAGE_RE.match(folded, en.end()) is not None
            if (next_stage or (stage is not None and not folded[en.end():stage[1]].strip())) and not _visit_before(
                    folded, tokens, en.start()):
                customer = self._customer(blank(folded, [(0, en.start("what")), (en.end("what"), len(folded))]),
                                              customers, user_id)
                return Parsed(Intent.STAGE_MOVE, original.strip(), leading=customer.found, customer=customer,
                              stage=stage[0] if stage and not next_stage else None, next_stage=next_stage)
        for m in MOVE_RE.finditer(folded):
            after = m.end()
            stage = self.find_stage(folded, after)
            next_stage = NEXT_STAGE_RE.match(folded, after) is not None
            if next_stage:
                stage = None
            elif stage is None or folded[after:stage[1]].strip(" 的了阶段"):
                continue  # the stage word must follow the verb ("进入 报价", "推进到方案呈现阶段")
            if not _on_token_boundary(tokens, m.start()):
                continue
            if _visit_before(folded, tokens, m.start()):
                return None  # "拜访完成 华远 1小时 客户同意进入报价" is a check-in; the move is part of its conclusion
            head = blank(folded, [(m.start(), len(folded))])
            customer = self._customer(head, customers, user_id)
            if not customer.found:
                customer = self._customer(folded, customers, user_id)
            return Parsed(Intent.STAGE_MOVE, original.strip(), leading=_opens_with(folded, customer, m.start()),
                          customer=customer, stage=stage[0] if stage else None, next_stage=next_stage)
        bare = NEXT_STAGE_RE.search(folded)  # "华远 下一阶段"
        if bare is not None and not _visit_before(folded, tokens, bare.start()):
            customer = self._customer(blank(folded, [(bare.start(), bare.end())]), customers, user_id)
            if customer.found:
                return Parsed(Intent.STAGE_MOVE, original.strip(), leading=_opens_with(folded, customer, bare.start()),
                              customer=customer, next_stage=True)
        return None

    def _arrive(self, original: str, folded: str, tokens: Sequence[_Token], now: datetime,
                customers: CustomerIndex, user_id: int | None) -> Parsed | None:
        m = ARRIVE_RE.match(folded)
        span: tuple[int, int] | None = (m.start(), m.end()) if m is not None and m.end() > m.start() else None
        weak = False
        if m is not None and m.group("weak"):
            # "到" alone must be a word of its own ("到底", "到时候" are not arrivals) and name a customer.
            weak = True
            if not any(t.end == m.end("weak") for t in tokens):
                span = None
        if span is None:
            tail = ARRIVE_TAIL_RE.search(folded)
            if tail is None:
                return None
            span = (tail.start(), tail.end())
            weak = False
        if any(t.word in VISIT_DONE_WORDS or t.word in DONE_MARKERS - {"回来"} for t in tokens):
            return None  # "到华远拜访完了" is a finished visit
        rest = blank(folded, [span])
        if QUESTION_RE.search(rest) or NOT_YET_RE.search(folded, 0, span[0]):
            return None  # "到华远还要多久", "签到失败了", "快到了"
        customer = self._customer(rest, customers, user_id)
        if not customer.found and (weak or not tidy(rest)):
            return None  # a bare "到了" says nothing about where
        return Parsed(Intent.VISIT_ARRIVE, original.strip(), leading=True, customer=customer,
                      extra={"place": tidy(original[span[1]:]) if span[0] == 0 else tidy(original[: span[0]])})

    def _visit_done(self, original: str, folded: str, tokens: Sequence[_Token], now: datetime,
                    customers: CustomerIndex, user_id: int | None) -> Parsed | None:
        trigger = _visit_trigger(tokens)
        if trigger is None:
            glued = GLUED_DONE_RE.search(folded)
            if glued is not None:
                trigger = [(glued.start(), glued.end())]
        customer: MatchResult | None = None
        if trigger is None:
            went = self._went_to(folded, tokens, customers, user_id)
            if went is not None:
                trigger, customer = went
        if trigger is None:
            trigger = _reported_visit(folded, tokens)
            if trigger is None:
                return None
        t_start = verb_start = trigger[0][0]
        lead = LEADING_TIME_RE.search(folded[:t_start])
        if lead is not None:
            t_start = lead.start()
            trigger = [(t_start, trigger[0][1]), *trigger[1:]]
        spans: list[tuple[int, int]] = list(trigger)
        # Only the words that say "a visit happened" are cut: "拜访华远完毕" keeps 华远 between them.
        without_trigger = blank(folded, spans)
        if customer is None:
            customer = self._customer(without_trigger, customers, user_id)
        named = customer.chosen or (customer.candidates[0] if customer.candidates else None)
        if named is not None:
            spans.append((named.start, named.end))
        rest = blank(folded, spans)
        duration = find_duration(_one_to_one(rest))
        if duration is not None:
            spans.append((duration.start, duration.end))
        rest = blank(folded, spans)
        contact = None
        cm = CONTACT_RE.search(rest)
        cut_contact = False
        if cm is not None:
            group = "who" if cm.group("who") else "role"
            contact = cm.group(group)
            # "华远的王总，…", "见完王总 …", "宏达零售，李经理，40分钟": who was met, not part of the conclusion —
            # a title on its own, next to the customer or the visit words. "华远 王总认可方案" keeps it.
            who = (cm.start(group), cm.end(group))
            people = [contact]
            while len(people) < MAX_CONTACTS and (more := MORE_CONTACTS_RE.match(rest, who[1])) is not None:
                people.append(more.group("who"))
                who = (who[0], more.end())
            contact = "、".join(people)
            anchors = [(named.start, named.end)] if named is not None else []
            anchors += trigger
            alone = who[1] >= len(rest) or not rest[who[1]].isalnum()
            if alone and any(_adjacent(without_trigger, anchor, who) for anchor in anchors):
                spans.append((cm.start(), who[1]))
                cut_contact = True
        if named is not None and not cut_contact and folded[named.end : named.end + 1] == "的":
            spans.append((named.end, named.end + 1))  # "华远的需求很明确" → "需求很明确"
        rest = blank(folded, spans)
        conclusion = _conclusion(original, rest)
        next_date, next_step = _next_step(original, rest, now)
        amount = _amount(rest)
        return Parsed(
            Intent.VISIT_DONE, original.strip(), leading=verb_start <= 2 or t_start == 0, customer=customer,
            duration_minutes=int(duration.value) if duration else None, conclusion=conclusion,
            next_date=next_date, next_step=next_step, contact=contact,
            amount=Decimal(amount.value) if amount is not None else None,
        )

    def _went_to(self, folded: str, tokens: Sequence[_Token], customers: CustomerIndex,
                 user_id: int | None) -> tuple[list[tuple[int, int]], MatchResult] | None:
        """"去了趟宏达零售", "跑了一趟华远", "刚从华远出来": a visit, when a known customer is named right there."""
        for m in WENT_RE.finditer(folded):
            if not _on_token_boundary(tokens, m.start()):
                continue  # "过去了", "失去了"
            customer = self._customer(blank(folded, [(0, m.end())]), customers, user_id)
            named = customer.chosen or (customer.candidates[0] if customer.candidates else None)
            if named is not None and not folded[m.end():named.start].strip():
                return [(m.start(), m.end())], customer
        for m in CAME_OUT_RE.finditer(folded):
            place = blank(folded, [(0, m.start("place")), (m.end("place"), len(folded))])
            customer = self._customer(place, customers, user_id)
            if customer.found:
                return [(m.start(), m.start("place")), (m.end("place"), m.end())], customer
        return None


def _one_to_one(folded: str) -> str:
    """The folded text with the characters NFKC expands ("…" → "...", "㈱" → "(株)") blanked: the finders
    for durations, dates and amounts normalise their input, and their spans must stay this text's spans."""
    if unicodedata.is_normalized("NFKC", folded):
        return folded
    return "".join(ch if len(unicodedata.normalize("NFKC", ch)) == 1 else " " for ch in folded)


def _visit_trigger(tokens: Sequence[_Token]) -> list[tuple[int, int]] | None:
    """The spans of the words that say "a visit happened": a visit verb with a completion marker after
    it, or a recency marker before it, or a word that is both ("拜访完成", "见完"). The verb and its
    marker are separate spans: what stands between them ("拜访华远完毕") is not part of the trigger."""
    for i, tok in enumerate(tokens):
        if tok.word in VISIT_DONE_WORDS:
            end = tok.end
            for nxt in tokens[i + 1 : i + 3]:
                if nxt.word not in TRIGGER_TAIL or nxt.start != end:
                    break
                end = nxt.end
            return [(tok.start, end)]
        if tok.word in LEADING_DONE_WORDS:  # "done visiting acme", "finished visit"
            verb = next((t for t in tokens[i + 1 : i + 3] if t.word in ENGLISH_VISIT_VERBS), None)
            if verb is not None:
                return [(tok.start, verb.end)]
        if tok.word not in VISIT_VERBS:
            continue
        after = tokens[i + 1 : i + 5]
        if after and after[0].word in PAST_PARTICLES and tok.word not in WEAK_VERBS:
            return [(tok.start, after[0].end)]
        for j, nxt in enumerate(after):
            if nxt.word in DONE_MARKERS and (j == 0 or tok.word not in WEAK_VERBS):
                end = nxt.end
                k = i + 1 + j + 1
                if k < len(tokens) and tokens[k].word in TRIGGER_TAIL:
                    end = tokens[k].end
                if j == 0:
                    return [(tok.start, end)]
                return [(tok.start, tok.end), (nxt.start, end)]
        before = tokens[max(0, i - 4) : i]
        if tok.word not in WEAK_VERBS and any(b.word in RECENT_MARKERS for b in before):
            return [(tok.start, tok.end)]
        if tok.word in {"visited", "met"}:
            return [(tok.start, tok.end)]
    return None


def _visit_before(folded: str, tokens: Sequence[_Token], at: int) -> bool:
    """Words saying a visit is done come before position `at`."""
    trigger = _visit_trigger(tokens)
    if trigger is not None and trigger[0][0] < at:
        return True
    glued = GLUED_DONE_RE.search(folded, 0, at)
    return glued is not None


def _reported_visit(folded: str, tokens: Sequence[_Token]) -> list[tuple[int, int]] | None:
    """A visit verb among the first words and a duration after it: "拜访华远科技，1h，…", "华远 拜访 1小时 …";
    not when the words before the duration say it is planned, nor in a question."""
    for tok in tokens[:3]:
        if tok.word not in REPORT_VERBS:
            continue
        duration = find_duration(_one_to_one(folded[tok.end:]))
        if duration is None or QUESTION_RE.search(folded):
            return None
        if FUTURE_RE.search(folded, 0, tok.end + duration.start):
            return None
        end = tok.end
        following = next((t for t in tokens if t.start >= tok.end), None)
        if following is not None and following.word in REPORT_NOUNS and not folded[tok.end:following.start].strip():
            end = following.end  # "拜访记录：…"
        return [(tok.start, end)]
    return None


def _adjacent(text: str, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Only spaces, commas and 的/和/跟/与/同 stand between the spans a and b of text (in either order)."""
    gap = text[a[1]:b[0]] if a[1] <= b[0] else text[b[1]:a[0]] if b[1] <= a[0] else ""
    return not gap.strip(" 的和跟与同，,、")


def _amount(rest: str) -> Found | None:
    """The first money amount: a number with a unit or thousands separators ("5万", "50,000元"), or a
    Chinese numeral with 万/亿 in it ("伍万", "三十万"; not "千万别", whose numeral has no digit)."""
    rest = _one_to_one(rest)
    found = find_amount(rest, require_unit=True)
    for m in BIG_NUMERAL_RE.finditer(rest):
        if found is not None and m.start() >= found.start:
            break
        if not any(ch in BIG_UNITS for ch in m.group()):
            continue
        value = find_amount(m.group())
        if value is not None and value.end - value.start == m.end() - m.start():
            return Found(value.value, m.start(), m.end())
    return found


def _opens_with(folded: str, customer: MatchResult, verb_at: int) -> bool:
    """A stage move is a command (it leaves a flow) only when it opens with the customer and the move:
    "华远 进入 报价", "把华远推进到…"; not "宏达同意进入需求诊断", which answers "结论？"."""
    found = customer.chosen or (customer.candidates[0] if customer.candidates else None)
    if found is None:
        return False
    before, between = folded[: found.start].strip(), folded[found.end : verb_at].strip()
    return before in ("", "把", "将") and between in ("", "的", "商机", "项目")


def _on_token_boundary(tokens: Sequence[_Token], at: int) -> bool:
    """The move verb starts a token (so "进入" inside "引进入口" does not count)."""
    return any(t.start == at for t in tokens) or not tokens


def _conclusion(original: str, rest: str) -> str | None:
    """What is left of a check-in once trigger, customer, duration and contact are cut out."""
    kept = "".join(o if r != " " else " " for o, r in zip(original, rest, strict=False))
    pieces = [tidy(LABEL_RE.sub("", tidy(part.strip(ELLIPSES)))).strip(ELLIPSES) for part in kept.split()]
    text = tidy(" ".join(p for p in pieces if p and not FILLER_PIECE_RE.fullmatch(fold(p))))
    meaningful = re.sub(r"[^\w]", "", text)
    return text if len(meaningful) >= 2 else None


def next_step_of(text: str, now: datetime) -> tuple[date | None, str | None]:
    """The dated next step in a sentence ("客户要再比较两家，周五前给反馈" → Friday, "周五前给反馈")."""
    original = clean(text)
    return _next_step(original, fold(original), now)


def _next_step(original: str, rest: str, now: datetime) -> tuple[date | None, str | None]:
    """A next step with a date ("下周三报价", "月底前定") becomes a follow-up task (R14).

    The step is the date's clause (up to punctuation, not the comma of "50,000"), from the piece the
    date starts: "预算5万 下周三报价" → "下周三报价"."""
    found = _next_date(rest, now)
    if found is None:
        return None, None
    clause_start = max((m.end() for m in CLAUSE_SEP_RE.finditer(rest, 0, found.start)), default=0)
    after = CLAUSE_SEP_RE.search(rest, found.end)
    clause_end = after.start() if after is not None else len(rest)
    piece_start = found.start
    while piece_start > clause_start and not (rest[piece_start - 1] == " " and _piece_break(rest, piece_start - 1)):
        piece_start -= 1
    kept = "".join(o if r != " " else " " for o, r in zip(original, rest, strict=False))
    step = tidy(" ".join(kept[piece_start:clause_end].split()))
    return found.value, step or None


def _piece_break(text: str, at: int) -> bool:
    """The space at text[at] separates pieces ("预算5万 下周三报价", "聊了POC 月底出结果"); a space between
    two Latin words does not ("demo on 12月5日")."""
    before, after = text[:at].rstrip(), text[at:].lstrip()
    return not (before and after and _latin(before[-1]) and _latin(after[0]))


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _next_date(rest: str, now: datetime) -> FoundDate | None:
    """The first date from today on — except the words for today itself, which date the visit:
    "今天去了星辰 … 明天发方案" → 明天. "月底" on the last day of the month is today, and still a deadline."""
    base = today(now)
    rest = _one_to_one(rest)
    for _ in range(8):
        found = find_date(rest, now)
        if found is None:
            return None
        if found.value > base or (found.value == base and rest[found.start:found.end] not in TODAY_WORDS):
            return found
        rest = blank(rest, [(found.start, found.end)])
    return None


def _bigrams(text: str) -> set[str]:
    text = text.replace(" ", "")
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())
