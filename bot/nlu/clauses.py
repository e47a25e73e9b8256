"""The pieces of a message the intent rules take apart (bot/nlu/intents.py): which words say a visit
happened, the amount, the one-line conclusion, the next step and its date."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date, datetime

from bot.nlu.customers import MatchResult
from bot.nlu.dates import FoundDate, find_date, today
from bot.nlu.numerals import BIG_UNITS
from bot.nlu.parsed import Token
from bot.nlu.quantities import Found, find_amount, find_duration
from bot.nlu.text import blank, clean, fold, tidy
from bot.nlu.vocabulary import (
    BIG_NUMERAL_RE,
    CLAUSE_SEP_RE,
    DONE_MARKERS,
    ELLIPSES,
    ENGLISH_VISIT_VERBS,
    FILLER_PIECE_RE,
    FUTURE_RE,
    GLUED_DONE_RE,
    LABEL_RE,
    LEADING_DONE_WORDS,
    PAST_PARTICLES,
    QUESTION_RE,
    RECENT_MARKERS,
    REPORT_NOUNS,
    REPORT_VERBS,
    TODAY_WORDS,
    TRIGGER_TAIL,
    VISIT_DONE_WORDS,
    VISIT_VERBS,
    WEAK_VERBS,
)


def one_to_one(folded: str) -> str:
    """The folded text with the characters NFKC expands ("…" → "...", "㈱" → "(株)") blanked: the finders
    for durations, dates and amounts normalise their input, and their spans must stay this text's spans."""
    if unicodedata.is_normalized("NFKC", folded):
        return folded
    return "".join(ch if len(unicodedata.normalize("NFKC", ch)) == 1 else " " for ch in folded)


def visit_trigger(tokens: Sequence[Token]) -> list[tuple[int, int]] | None:
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


def visit_before(folded: str, tokens: Sequence[Token], at: int) -> bool:
    """Words saying a visit is done come before position `at`."""
    trigger = visit_trigger(tokens)
    if trigger is not None and trigger[0][0] < at:
        return True
    glued = GLUED_DONE_RE.search(folded, 0, at)
    return glued is not None


def reported_visit(folded: str, tokens: Sequence[Token]) -> list[tuple[int, int]] | None:
    """A visit verb among the first words and a duration after it: "拜访华远科技，1h，…", "华远 拜访 1小时 …";
    not when the words before the duration say it is planned, nor in a question."""
    for tok in tokens[:3]:
        if tok.word not in REPORT_VERBS:
            continue
        duration = find_duration(one_to_one(folded[tok.end:]))
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


def adjacent(text: str, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Only spaces, commas and 的/和/跟/与/同 stand between the spans a and b of text (in either order)."""
    gap = text[a[1]:b[0]] if a[1] <= b[0] else text[b[1]:a[0]] if b[1] <= a[0] else ""
    return not gap.strip(" 的和跟与同，,、")


def amount_of(rest: str) -> Found | None:
    """The first money amount: a number with a unit or thousands separators ("5万", "50,000元"), or a
    Chinese numeral with 万/亿 in it ("伍万", "三十万"; not "千万别", whose numeral has no digit)."""
    rest = one_to_one(rest)
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


def opens_with(folded: str, customer: MatchResult, verb_at: int) -> bool:
    """A stage move is a command (it leaves a flow) only when it opens with the customer and the move:
    "华远 进入 报价", "把华远推进到…"; not "宏达同意进入需求诊断", which answers "结论？"."""
    found = customer.chosen or (customer.candidates[0] if customer.candidates else None)
    if found is None:
        return False
    before, between = folded[: found.start].strip(), folded[found.end : verb_at].strip()
    return before in ("", "把", "将") and between in ("", "的", "商机", "项目")


def on_token_boundary(tokens: Sequence[Token], at: int) -> bool:
    """The move verb starts a token (so "进入" inside "引进入口" does not count)."""
    return any(t.start == at for t in tokens) or not tokens


def conclusion_of(original: str, rest: str) -> str | None:
    """What is left of a check-in once trigger, customer, duration and contact are cut out."""
    kept = "".join(o if r != " " else " " for o, r in zip(original, rest, strict=False))
    pieces = [tidy(LABEL_RE.sub("", tidy(part.strip(ELLIPSES)))).strip(ELLIPSES) for part in kept.split()]
    text = tidy(" ".join(p for p in pieces if p and not FILLER_PIECE_RE.fullmatch(fold(p))))
    meaningful = re.sub(r"[^\w]", "", text)
    return text if len(meaningful) >= 2 else None


def next_step_of(text: str, now: datetime) -> tuple[date | None, str | None]:
    """The dated next step in a sentence ("客户要再比较两家，周五前给反馈" → Friday, "周五前给反馈")."""
    original = clean(text)
    return next_step_in(original, fold(original), now)


def next_step_in(original: str, rest: str, now: datetime) -> tuple[date | None, str | None]:
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
    rest = one_to_one(rest)
    for _ in range(8):
        found = find_date(rest, now)
        if found is None:
            return None
        if found.value > base or (found.value == base and rest[found.start:found.end] not in TODAY_WORDS):
            return found
        rest = blank(rest, [(found.start, found.end)])
    return None


def bigrams(text: str) -> set[str]:
    text = text.replace(" ", "")
    return {text[i : i + 2] for i in range(len(text) - 1)} or ({text} if text else set())
