"""R15: the keywords of a meeting note — jieba TF-IDF plus the sales domain dictionary.

Every domain finding in the note is a keyword and is listed under its tag:
- words the Lexicon tags competitor / budget / decision_maker / pain_point / timeline;
- money amounts in a clause that speaks of money ("预算50万左右" → budget "50万", "报价 30w" → "30万");
- people named by surname and title ("王总", "李总监", "张经理") → decision_maker.
The other words are ranked by jieba's TF-IDF (its IDF table, this Lexicon's tokens); stop words,
numbers, single characters and punctuation never count.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.nlu.quantities import find_amount

if TYPE_CHECKING:
    from bot.nlu.lexicon import Lexicon

# The R15 tags, in the order their findings are listed and interleaved.
NOTE_TAGS: tuple[str, ...] = ("competitor", "budget", "decision_maker", "pain_point", "timeline")

# Words that only name a category ("a competitor", "the budget"): listed after the specific findings
# of their tag, so that a short keyword list keeps "用友" and "50万" rather than "竞品" and "预算".
CATEGORY_WORDS = frozenset(
    "竞品 竞争对手 友商 对手 竞争厂商 其他厂商 别家 预算 报价 价格 费用 成本 痛点 "
    "决策人 决策者 关键人 负责人 决策链 拍板人 审批人".split()
)

# Frequent words that say nothing about a deal (single characters never count anyway).
STOP_WORDS = frozenset(
    """我们 你们 他们 她们 它们 咱们 大家 自己 这个 那个 这些 那些 这样 那样 这种 那种 这边 那边 这里 那里
    什么 怎么 怎样 为什么 如何 哪个 哪些 多少 已经 可以 可能 应该 需要 没有 不是 就是 还是 还有 而且 并且
    但是 不过 所以 因为 如果 虽然 然后 而是 或者 以及 以后 之后 之前 以前 目前 现在 当前 今天 今日 昨天
    明天 后天 刚才 刚刚 一下 一些 一点 一个 一直 一起 一样 有点 有些 比较 非常 特别 很多 许多 左右 大概
    大约 差不多 基本 基本上 其实 确实 当然 肯定 也许 或许 希望 觉得 认为 表示 知道 看看 感觉 比如 例如
    这次 那次 上次 下次 每次 时候 时间 方面 情况 问题 事情 东西 部分 主要 进行 相关 通过 对于 关于 还在
    可是 只是 只有 就要 正在 继续 同时 另外 其他 其中 所有 各种 之类 等等 客户 公司 对方 我方 聊了 沟通
    交流 了解 讨论 说明 确认 反馈 目标 计划 安排 纪要 会议纪要 备注 记录 内容 今年 这周 本次 嗯嗯 好的
    没问题 可能会 一般 然后呢 经常 总是 往往 一般来说 日前 月前 年前 天前 以内 之内""".split()
)

# Common single-character surnames, without those that are mostly function words (和, 向, 应, 连, 时):
# "和总监聊了" is not a person.
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔汤常温康施文牛樊葛"
    "邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝"
    "路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳穆农司卓古吉缪简车项芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟"
    "臧闵苟邬边卞姬师仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
# Longest first: "李总监" is 李 + 总监, not 李 + 总.
_TITLES = ("副总经理", "副总裁", "总经理", "董事长", "副总", "总裁", "总监", "总", "董", "经理", "主任", "局长",
           "处长", "部长", "科长", "厂长", "院长")
_TITLE = re.compile(rf"(?:欧阳|司马|上官|诸葛|东方|皇甫|令狐|慕容|[{_SURNAMES}])(?:{'|'.join(_TITLES)})")
# Clauses end at these: an amount counts as budget only in a clause that has a budget word.
_CLAUSE_BREAK = re.compile(r"[，,。；;！!？?\n]")  # not "：": "预算：50万" is one clause
_NUMERIC = re.compile(r"[\d.,%]")


@dataclass(frozen=True)
class Keywords:
    """A note's keywords (at most topk, domain findings first) and every domain finding by tag.

    `tags` maps each NOTE_TAGS tag that has findings to them (specific ones first, then in text
    order); it is not cut to topk, so a long note keeps all its competitors even when `words` cannot.
    """

    words: tuple[str, ...] = ()
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Finding:
    word: str
    tag: str
    start: int
    specific: bool


def extract_keywords(lexicon: Lexicon, text: str, topk: int) -> Keywords:
    """R15: at most `topk` keywords of a note; domain findings always first and all listed in `tags`.

    Order: the findings, one of each tag in NOTE_TAGS order per round (so a short list still covers
    every tag), then the other words by TF-IDF weight (ties: first in the text). Deterministic.
    """
    text = unicodedata.normalize("NFKC", text)
    tokens = lexicon.tokenize(text)
    if not tokens:
        return Keywords()
    amounts = list(_amounts(text))
    findings = _titles(text, tokens)
    # Tokens inside an amount or a title are not keywords themselves ("50万左右" gives 50 / 万左右).
    covered = _Spans([(start, end) for _, start, end in amounts] + [(f.start, f.start + len(f.word)) for f in findings])

    budget_clauses: set[int] = set()
    breaks = [match.start() for match in _CLAUSE_BREAK.finditer(text)]

    def clause_of(position: int) -> int:
        return bisect.bisect_left(breaks, position)

    candidates: list[tuple[str, int]] = []
    for token, start, end in tokens:
        token_tags = lexicon.tags_of(token)
        if covered.overlaps(start, end):
            if "budget" in token_tags:  # "50万元": the amount is the finding, 万元 still says "money"
                budget_clauses.add(clause_of(start))
            continue
        tags = [tag for tag in NOTE_TAGS if tag in token_tags] if token_tags else []
        for tag in tags:
            findings.append(_Finding(token, tag, start, token not in CATEGORY_WORDS))
            if tag == "budget":
                budget_clauses.add(clause_of(start))
        if not tags:
            candidates.append((token, start))
    for label, start, _ in amounts:
        if clause_of(start) in budget_clauses:
            findings.append(_Finding(label, "budget", start, True))

    by_tag = _group(findings)
    words = _interleave(by_tag)[: max(topk, 0)]
    if len(words) < topk:
        taken = {word.casefold() for word in words}
        for word in _ranked(lexicon, candidates):
            if len(words) >= topk:
                break
            if word.casefold() not in taken:
                words.append(word)
                taken.add(word.casefold())
    return Keywords(tuple(words), by_tag)


def _amounts(text: str) -> Iterator[tuple[str, int, int]]:
    """Every amount with a unit ("50万", "3000元", "30w", "50,000"), as a label and its span."""
    offset = 0
    while offset < len(text):
        found = find_amount(text[offset:], require_unit=True)
        if found is None:
            return
        yield _amount_label(Decimal(found.value)), offset + found.start, offset + found.end
        offset += found.end


def _amount_label(yuan: Decimal) -> str:
    """50万, 1.2亿, 8000元: how reps write amounts, whatever form the note used."""
    for unit, size in (("亿", Decimal(100_000_000)), ("万", Decimal(10_000))):
        if yuan >= size:
            return f"{(yuan / size).normalize():f}{unit}"
    return f"{yuan.normalize():f}元"


def _titles(text: str, tokens: list[tuple[str, int, int]]) -> list[_Finding]:
    """People named by surname and title: 王总, 李总监, 张经理 (decision makers)."""
    ends = {start: end for _, start, end in tokens}
    found: list[_Finding] = []
    for match in _TITLE.finditer(text):
        start, end = match.span()
        # The surname must start a token ("本周总结": 周 is inside 本周), and no word may start inside
        # the title and run past it ("王总结了": 总结; "50万总价": 总价).
        if start not in ends or any(ends.get(i, 0) > end for i in range(start + 1, end)):
            continue
        found.append(_Finding(match.group(), "decision_maker", start, True))
    return found


class _Spans:
    """Spans of the text, asked whether they overlap [start, end) in O(log n) (a note may hold thousands)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        spans.sort()
        self._starts = [start for start, _ in spans]
        self._max_end: list[int] = []  # the furthest end among spans[:i + 1]
        for _, end in spans:
            self._max_end.append(max(end, self._max_end[-1] if self._max_end else end))

    def overlaps(self, start: int, end: int) -> bool:
        before = bisect.bisect_left(self._starts, end)  # the spans that start before `end`
        return before > 0 and self._max_end[before - 1] > start


def _group(findings: list[_Finding]) -> dict[str, tuple[str, ...]]:
    ordered = sorted(findings, key=lambda f: (not f.specific, f.start))
    grouped: dict[str, tuple[str, ...]] = {}
    for tag in NOTE_TAGS:
        unique: dict[str, str] = {}  # casefolded -> as first written ("CEO" and "ceo" are one)
        for finding in ordered:
            if finding.tag == tag:
                unique.setdefault(finding.word.casefold(), finding.word)
        words = tuple(unique.values())
        if words:
            grouped[tag] = words
    return grouped


def _interleave(by_tag: dict[str, tuple[str, ...]]) -> list[str]:
    """The first finding of each tag, then the second of each, ...; a word in two tags counts once."""
    out: dict[str, None] = {}
    rounds = max((len(words) for words in by_tag.values()), default=0)
    for i in range(rounds):
        for words in by_tag.values():
            if i < len(words):
                out.setdefault(words[i])
    return list(out)


def _ranked(lexicon: Lexicon, candidates: list[tuple[str, int]]) -> list[str]:
    """The candidate words by jieba's TF-IDF weight (count / total × IDF), ties by first position."""
    tfidf = lexicon.tfidf()
    idf: dict[str, float] = tfidf.idf_freq
    median: float = tfidf.median_idf
    counts: dict[str, int] = {}  # casefolded -> occurrences
    first: dict[str, tuple[str, int]] = {}  # casefolded -> (the word as first written, where)
    for token, start in candidates:
        key = token.casefold()
        if key in STOP_WORDS or key in tfidf.stop_words or not _is_word(token):
            continue
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, (token, start))
    total = sum(counts.values())
    weight = {key: count / total * idf.get(first[key][0], median) for key, count in counts.items()}
    return [first[key][0] for key in sorted(counts, key=lambda key: (-weight[key], first[key][1]))]


def _is_word(token: str) -> bool:
    # At least two letters (Han characters are letters): no punctuation, numbers, "30w", "5G", emoji.
    return sum(ch.isalpha() for ch in _NUMERIC.sub("", token)) >= 2
