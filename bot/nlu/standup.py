"""Splitting a stand-up answer (R16) into its three parts: what is stuck, whose support is needed, when.

Pure: the handler (handlers/standup.py) stores and asks; this reads. The parts may be numbered
(1. 1、 ① 一、 （1） 第一点), labelled (卡点： 需要支持： 预计：, any order), on lines or sentences of their
own, or just follow each other: the text is cut where its cues change.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from bot.nlu.dates import find_date
from bot.nlu.text import fold, meaningful, tidy


class Part(StrEnum):
    STUCK = "stuck"
    SUPPORT = "support"
    RESOLVE = "resolve"


ORDER = {Part.STUCK: 0, Part.SUPPORT: 1, Part.RESOLVE: 2}
HEADING_CHARS = 12



_SERIES = ("①②③④⑤⑥⑦⑧⑨", "⑴⑵⑶⑷⑸⑹⑺⑻⑼", "❶❷❸❹❺❻❼❽❾", "➀➁➂➃➄➅➆➇➈", "➊➋➌➍➎➏➐➑➒")
CIRCLED = {ch: n for series in _SERIES for n, ch in enumerate(series, 1)}
_CIRCLED = "".join(CIRCLED)
_HAN = "一二三四五六七八九"
_N = f"[1-9{_HAN}]"
# 1. 1、 1) 1: (1) ① 一、 第一点 第1条: a marker starts a part. "3.12月10日" is a marker before a date,
# "2.5万" is not one.
MARKER_RE = re.compile(
    rf"\((?P<paren>{_N})\)"
    rf"|(?P<circled>[{_CIRCLED}])"
    rf"|第(?P<ordinal>{_N})(?:[点条项个]?[、,:.]|[点条项])"
    r"|(?P<digit>[1-9])(?:[、)]|\.(?!\d)|\.(?=\d{1,2}(?:月|号|日|[/-]\d)|\d{4}年)|:(?!\d))"
    rf"|(?P<han>[{_HAN}])[、.:)]"
)
HEAD_MARKER_RE = re.compile(rf"\s*(?:{MARKER_RE.pattern})\s*")  # used with match(): anchored
TAIL_MARKER_RE = re.compile(
    rf"\s*(?:\({_N}\)|[1-9][.、)]|(?<![\u4e00-\u9fff])[{_HAN}][.、)]|[{_CIRCLED}]|第{_N}[点条项]?[、,:.]?)\s*$"
)
_LABELS = {
    Part.STUCK: "top3卡点 top3 卡点商机 卡住的商机 卡点 卡住 卡在 堵点 难点 问题 困难 阻碍 风险",
    Part.SUPPORT: "需要谁支持 需要的支持 需要支持 需支持 谁支持 支持 需要协助 协助 求助 需要帮助 帮助 需要 资源",
    Part.RESOLVE: "预计解决时间 预计解决日期 预计解决 预计完成 预计时间 预计 解决时间 解决日期 何时解决 截止时间 截止 "
                  "完成时间 时间 日期 deadline eta",
}
LABEL_PART = {label: part for part, labels in _LABELS.items() for label in labels.split()}
_ALTS = "|".join(sorted(map(re.escape, LABEL_PART), key=len, reverse=True))
LABEL_RE = re.compile(rf"【\s*(?P<a>{_ALTS})\s*】\s*:?|(?P<b>{_ALTS})\s*:")
# Clause breaks (in the folded text: "，；：" are ",;:" there).
BREAK_RE = re.compile(r"[\s,;:。!?、…]+")
# Words that lead into the next clause ("需要 王经理陪访", "预计 12月10日").
LEAD_ONLY_RE = re.compile(r"还需要|需要|需|请|找|麻烦|希望|要|让|求|预计|争取|计划|大概|估计|最晚|最迟")
SUPPORT_LEAD_RE = re.compile(r"还需要|需要|需|请|找|麻烦|希望|让|求")
RESOLVE_LEAD_RE = re.compile(r"(?:预计|争取|计划|大概|估计|最晚|最迟|预期)\s*$")
SUPPORT_RE = re.compile(
    r"(?<!不)(?:支持|协助|帮忙|帮助|陪访|陪同|出面|协调|支援|求助|资源)"
    r"|(?:需要|请|找|麻烦|让)[^,;。\n]{0,8}?(?:总经理|总监|经理|总|老板|领导|售前|技术|法务|财务|交付|专家|老师|主管|部长)"
)
PERSON_ONLY_RE = re.compile(r"(?:需要|请|找)?[\u4e00-\u9fff]{1,3}(?:总经理|总监|经理|总|老师|工|主管|部长|老板)"
                            r"(?:帮忙|支持|出面|陪访)?")
STUCK_RE = re.compile(r"卡|堵|难点|困难|问题|风险|阻力|阻碍|僵|停滞|没进展|没有进展|推不动|搁置|延期|拖")
RESOLVE_WORDS_RE = re.compile(r"解决|搞定|完成|落地|突破|关单|签约|签单|拿下|敲定|之前|以前|前|内|左右|可以|应该|能")
NONE_RE = re.compile(
    r"(?:本周|这周|目前|暂时|暂|都|基本|还)?(?:无|没有|没|暂无|不需要|不用|无需|没啥|没什么|nothing|none|no|n/?a)"
    r"(?:卡点|卡住的?|卡的|问题|支持|需要|困难|商机|风险|了|的)*"
)
Spans = dict[Part, list[tuple[int, int]]]


def split_answer(text: str, now: datetime, default: Part = Part.STUCK, people: Sequence[str] = ()) -> dict[Part, str]:
    """R16: the parts of a stand-up answer, each as written (tidied, markers and labels dropped).

    Labels ("卡点：") win, then numbers (1. 2. 3.); otherwise the text is cut into clauses and a part
    starts where a clause shows its cue: who can help, a date to solve by, what is stuck. Text before
    any cue belongs to `default`, the part that was asked."""
    norm = _norm(text)
    names = [key for n in people if len(key := fold(n).strip()) >= 2]
    spans = (_by_labels(norm, now, names) or _by_numbers(norm, now, names)
             or _by_cues(norm, 0, len(norm), now, default, names))
    out: dict[Part, str] = {}
    for part in Part:
        pieces = [piece for s, e in spans.get(part, []) if (piece := _piece(text, norm, s, e))]
        if pieces:
            out[part] = "；".join(pieces)
    return out


def is_none(text: str | None) -> bool:
    """"无", "没有卡点", "不需要": the part is answered, with nothing."""
    pieces = [p for piece in re.split(r";", fold(text or "")) if (p := re.sub(r"[\W_]+", "", piece))]
    return bool(pieces) and all(NONE_RE.fullmatch(p) for p in pieces)


def _norm(text: str) -> str:
    """Folded (full-width → ASCII, lower case), same length; circled numbers kept (NFKC makes ① a "1")."""
    return "".join(ch if ch in CIRCLED else f for ch, f in zip(text, fold(text), strict=True))


def date_text(norm: str) -> str:
    """For find_date, which applies NFKC itself: characters NFKC would widen ("⑴" → "(1)") are blanked so
    positions stay."""
    return "".join(" " if len(unicodedata.normalize("NFKC", ch)) != 1 else ch for ch in norm)




def _piece(text: str, norm: str, start: int, end: int) -> str:
    """text[start:end] without a leading or trailing marker, tidied."""
    head = HEAD_MARKER_RE.match(norm, start, end)
    if head is not None:
        start = head.end()
    tail = TAIL_MARKER_RE.search(norm, start, end)
    if tail is not None and tail.start() > start:
        end = tail.start()
    piece = tidy(text[start:end])
    return piece if meaningful(piece) else ""


def _boundary(norm: str, at: int) -> bool | None:
    """Before a marker or label at `at`: True after a start, space or punctuation; False (weak) after a
    Han character ("预算2.需要"); None where it cannot start one ("TOP3:", "12.", "1.5")."""
    if at == 0:
        return True
    prev = norm[at - 1]
    if prev in CIRCLED or not prev.isalnum():
        return True
    if prev.isascii() or prev.isdigit() or prev == "第":
        return None
    return False


def _labels(norm: str) -> list[re.Match[str]]:
    return [m for m in LABEL_RE.finditer(norm) if _boundary(norm, m.start()) or m.group("a")]


def _by_labels(norm: str, now: datetime, names: Sequence[str]) -> Spans | None:
    """"卡点：… 需要支持：… 预计：…" in any order. Text before the first label, and an unlabelled part
    inside a labelled one ("卡点：华远卡在预算，需要王经理陪访"), are found by their cues."""
    found = _labels(norm)
    if not found:
        return None
    segments = [(0, found[0].start(), Part.STUCK)] if found[0].start() > 0 else []
    segments += [(m.end(), found[i + 1].start() if i + 1 < len(found) else len(norm), LABEL_PART[m["a"] or m["b"]])
                 for i, m in enumerate(found)]
    labelled = {part for _, _, part in segments[-len(found):]}
    spans: Spans = {}
    for start, end, part in segments:
        for cued, pieces in _by_cues(norm, start, end, now, part, names).items():
            spans.setdefault(cued if cued not in labelled else part, []).extend(pieces)
    return spans


def _markers(norm: str) -> list[tuple[int, int]]:
    """The spans of markers 1, 2, 3 … in order: for each number the first one after the previous marker
    that follows a space or punctuation, else the first after a Han character."""
    by_number: dict[int, list[tuple[int, int, bool]]] = {}
    for m in MARKER_RE.finditer(norm):
        kind = m.lastgroup or ""
        value = m.group(kind)
        n = CIRCLED[value] if kind == "circled" else int(value) if value.isdigit() else _HAN.index(value) + 1
        strength = True if kind in ("circled", "ordinal") else _boundary(norm, m.start())
        if kind == "han" and strength is False:
            continue  # "周一、周二", "统一、": a Han numeral marker follows a space or punctuation
        if strength is not None:
            by_number.setdefault(n, []).append((m.start(), m.end(), strength))
    sequence: list[tuple[int, int]] = []
    position = 0
    for n in range(1, 10):
        after = [c for c in by_number.get(n, []) if c[0] >= position]
        if not after:
            break
        start, end, _ = next((c for c in after if c[2]), after[0])
        sequence.append((start, end))
        position = end
    return sequence


def _by_numbers(norm: str, now: datetime, names: Sequence[str]) -> Spans | None:
    """1. 2. 3. are the three parts, in order, when they read so (a date in the third, or help in the
    second); two numbers are the stuck part and the rest; otherwise (TOP3 numbered) the cues decide."""
    markers = _markers(norm)
    if len(markers) < 2:
        return None
    bodies = [(m[1], markers[i + 1][0] if i + 1 < len(markers) else len(norm)) for i, m in enumerate(markers)]
    head = tidy(norm[:markers[0][0]])
    if len(head) > HEADING_CHARS and not norm[:markers[0][0]].rstrip().endswith(":"):
        bodies[0] = (0, bodies[0][1])  # more than a heading ("本周三点：") before 1.: part of the first part
    if len(bodies) == 2:
        spans: Spans = {Part.STUCK: [bodies[0]]}
        for part, found in _by_cues(norm, *bodies[1], now, Part.SUPPORT, names).items():
            spans.setdefault(part, []).extend(found)
        return spans
    if len(bodies) == 3:
        second, third = (norm[s:e] for s, e in bodies[1:])
        dated = find_date(date_text(third), now) is not None
        if dated or _support_at(norm, *bodies[1], names) is not None or is_none(second) or is_none(third):
            return {Part.STUCK: [bodies[0]], Part.SUPPORT: [bodies[1]], Part.RESOLVE: [bodies[2]]}
    return _by_cues(norm, markers[0][1], len(norm), now, Part.STUCK, names, breaks=markers)


def _clauses(norm: str, start: int, end: int, breaks: Sequence[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    cut = [False] * len(norm)
    for m in BREAK_RE.finditer(norm, start, end):
        cut[m.start():m.end()] = [True] * (m.end() - m.start())
    for s, e in breaks:
        cut[s:e] = [True] * (e - s)
    clauses: list[tuple[int, int]] = []
    i = start
    while i < end:
        if cut[i]:
            i += 1
            continue
        j = i
        while j < end and not cut[j]:
            j += 1
        if clauses and LEAD_ONLY_RE.fullmatch(norm, *clauses[-1]):
            clauses[-1] = (clauses[-1][0], j)  # "需要" + "王经理陪访"
        else:
            clauses.append((i, j))
        i = j
    return clauses


def _support_at(norm: str, start: int, end: int, names: Sequence[str]) -> int | None:
    """Where a call for help starts in norm[start:end] (from its lead-in: "需要小刘帮忙"), if anywhere."""
    hits = [m.start() for m in [SUPPORT_RE.search(norm, start, end)] if m is not None]
    hits += [at for name in names if (at := norm.find(name, start, end)) >= 0]
    if PERSON_ONLY_RE.fullmatch(norm, start, end):
        hits.append(start)
    if not hits:
        return None
    at = min(hits)
    leads = list(SUPPORT_LEAD_RE.finditer(norm, max(start, at - 8), at))
    return leads[-1].start() if leads else at


def _resolve_at(norm: str, start: int, end: int, now: datetime, last: bool) -> int | None:
    """Where a solve-by date starts in norm[start:end]: a date with 预计/解决/前/… around it, or alone in
    the last clause ("…，周五吧"); "华远周一、周二都约不到人" has no solve-by date."""
    found = find_date(date_text(norm[start:end]), now)
    if found is None:
        return None
    at, after = start + found.start, norm[start + found.end:end]
    rest = re.sub(r"[\W_]+", "", RESOLVE_WORDS_RE.sub("", norm[start:at] + after))
    if not (RESOLVE_WORDS_RE.search(after) or (last and len(rest) <= 1) or RESOLVE_LEAD_RE.search(norm, start, at)):
        return None
    lead = RESOLVE_LEAD_RE.search(norm, max(start, at - 4), at)
    return lead.start() if lead else at


def _by_cues(norm: str, start: int, end: int, now: datetime, default: Part, names: Sequence[str],
             breaks: Sequence[tuple[int, int]] = ()) -> Spans:
    """Cut norm[start:end] where a clause shows another part's cue. A clause's first cue starts its part at
    the clause; a later cue in the same clause cuts inside it only in the usual order (stuck → support →
    date): "华远卡在预算需要王经理陪访12月10日前解决" is three parts, "需要王经理帮忙解决卡点" one."""
    cuts: list[tuple[int, Part]] = [(start, default)]
    asking: int | None = None  # a clause with no cue that begins like a request ("需要 小刘 帮忙")
    clauses = _clauses(norm, start, end, breaks)
    for i, (cs, ce) in enumerate(clauses):
        stuck = STUCK_RE.search(norm, cs, ce)
        resolve = _resolve_at(norm, cs, ce, now, last=i == len(clauses) - 1)
        found = ((_support_at(norm, cs, ce, names), Part.SUPPORT), (resolve, Part.RESOLVE),
                 (stuck.start() if stuck else None, Part.STUCK))
        cues = sorted((at, part) for at, part in found if at is not None)
        for n, (at, part) in enumerate(cues):
            current = cuts[-1][1]
            if part == current:
                continue
            if n == 0:
                cuts.append((asking if part == Part.SUPPORT and asking is not None else cs, part))
            elif ORDER[part] > ORDER[current]:
                cuts.append((at, part))
        if cues:
            asking = None
        elif asking is None and SUPPORT_LEAD_RE.match(norm, cs, ce):
            asking = cs
    spans: Spans = {}
    for i, (at, part) in enumerate(cuts):
        until = cuts[i + 1][0] if i + 1 < len(cuts) else end
        if until > at:
            spans.setdefault(part, []).append((at, until))
    return spans


def reads_as_answer(text: str, duration_minutes: int | None) -> bool:
    """A check-in or stage move phrase (its text and duration slot) that is really a stand-up answer:
    numbered or labelled parts, or something stuck ("华远推进到报价卡住了") in a phrase that gives no visit duration."""
    norm = _norm(text)
    if len(_markers(norm)) >= 2 or _labels(norm):
        return True
    return STUCK_RE.search(norm) is not None and duration_minutes is None


