"""Finding the customer a rep means in free text (R14): names, aliases, short forms and typos.

Reps write "华远", "华远科技", "上海华远" or "华远科枝" for 上海华远科技有限公司. The index knows, for
every customer, its name, its aliases and a derived short form (the name without a leading city and
the usual company suffixes). `find` looks for exact occurrences of any form first (longest wins); only
when there is none does it compare windows of the text with the forms by edit distance, after a
character-bigram prefilter so the work stays proportional to the plausible candidates.

Pure: no database, no jieba. The service (bot/nlu/service.py) rebuilds the index when customers change.
"""

from __future__ import annotations

import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

# Company suffixes and leading place names dropped to derive a short form ("上海华远科技有限公司" → "华远").
_SUFFIXES = (
    "股份有限公司", "有限责任公司", "有限公司", "集团公司", "集团", "股份", "公司", "控股",
    "科技", "技术", "信息", "网络", "软件", "电子", "实业", "贸易", "商贸", "发展", "智能", "数字",
    "物流", "零售", "连锁", "医疗", "制造", "工业", "服务", "咨询", "传媒", "文化", "教育",
    "超市", "商场", "百货", "门店", "餐饮", "酒店", "地产", "置业", "建设", "工程", "能源", "汽车",
    "食品", "药业", "医药", "银行", "保险", "证券", "物业", "家居", "电器", "机械", "材料", "化工",
)
_PLACES = (
    "北京", "上海", "天津", "重庆", "广州", "深圳", "杭州", "南京", "苏州", "成都", "武汉", "西安",
    "宁波", "无锡", "合肥", "厦门", "青岛", "济南", "郑州", "长沙", "福州", "东莞", "佛山", "大连",
    "沈阳", "昆明", "南昌", "广东", "江苏", "浙江", "山东", "福建", "湖北", "湖南", "四川", "河南",
    "安徽", "河北", "中国",
)
_SUFFIXES_BY_LAST_CHAR: dict[str, tuple[str, ...]] = {
    last: tuple(s for s in _SUFFIXES if s.endswith(last)) for last in {s[-1] for s in _SUFFIXES}
}  # the suffixes a name can end with, by its last character, in _SUFFIXES order
# Latin-script company suffixes, dropped word by word ("ACME Corp" → "acme", "Foo Bar Co., Ltd." → "foo bar").
_LATIN_SUFFIXES = frozenset({
    "co", "corp", "corporation", "company", "inc", "incorporated", "ltd", "limited", "llc", "plc", "gmbh", "ag",
    "sa", "bv", "group", "holding", "holdings", "intl", "international",
})
EXACT, ALIAS, SHORT = 1.0, 1.0, 0.9
MIN_FORM_CHARS = 2
MIN_FUZZY_CHARS = 3
MAX_SCAN_CHARS = 400  # fuzzy matching looks at the first part of a message only (names come early)


def fold(text: str) -> str:
    """The form names are compared in: NFKC, lower case, no whitespace or punctuation."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def short_forms(name: str) -> list[str]:
    """Shorter ways to say a company name: without the leading place, without suffixes one by one
    ("上海华远科技有限公司" → 华远科技有限公司, 华远科技, 华远, 上海华远科技, 上海华远). Longest first."""
    full = fold(name)
    bases = [full]
    for place in _PLACES:
        if full.startswith(place) and len(full) - len(place) >= MIN_FORM_CHARS:
            bases.append(full[len(place):])
            break
    forms: set[str] = set()
    for base in bases:
        core = base
        forms.add(core)
        changed = True
        while changed:
            changed = False
            for suffix in _SUFFIXES_BY_LAST_CHAR.get(core[-1:], ()):
                if core.endswith(suffix) and len(core) - len(suffix) >= MIN_FORM_CHARS:
                    core = core[: -len(suffix)]
                    forms.add(core)
                    changed = True
                    break
    words = [w for w in "".join(ch if ch.isalnum() else " " for ch in unicodedata.normalize("NFKC", name).lower())
             .split()]
    while len(words) > 1 and words[-1].isascii() and words[-1] in _LATIN_SUFFIXES:
        words.pop()
        if len("".join(words)) >= MIN_FORM_CHARS:
            forms.add("".join(words))
    forms.discard(full)
    return sorted(forms, key=len, reverse=True)


@dataclass(frozen=True)
class CustomerEntry:
    id: int
    name: str
    owner_id: int | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomerMatch:
    """A customer found in text[start:end] (positions in the text as given), with a score in (0, 1]."""

    customer_id: int
    name: str
    owner_id: int | None
    score: float
    start: int
    end: int


@dataclass(frozen=True)
class MatchResult:
    """`chosen` when one customer is clearly meant; otherwise `candidates` (best first) to ask about."""

    chosen: CustomerMatch | None
    candidates: tuple[CustomerMatch, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.chosen is None and len(self.candidates) > 1

    @property
    def found(self) -> bool:
        return self.chosen is not None or bool(self.candidates)


@dataclass(frozen=True)
class _Form:
    folded: str
    entry: CustomerEntry
    score: float


class CustomerIndex:
    """All customers' name forms, for exact and fuzzy look-up in a message."""

    def __init__(self, entries: Iterable[CustomerEntry] = ()) -> None:
        self.entries: dict[int, CustomerEntry] = {}
        self._forms: dict[str, list[_Form]] = defaultdict(list)
        self._bigrams: dict[str, set[str]] = defaultdict(set)
        self._by_customer: dict[int, list[str]] = defaultdict(list)
        for entry in entries:
            self._add(entry)
        # For the exact scan: the lengths of the forms that start with each two characters, longest first.
        prefixes: dict[str, set[int]] = defaultdict(set)
        for form_text in self._forms:
            prefixes[form_text[:2]].add(len(form_text))
        self._lengths_by_prefix = {p: sorted(ls, reverse=True) for p, ls in prefixes.items()}

    def __len__(self) -> int:
        return len(self.entries)

    def words(self) -> list[str]:
        """Every name, alias and short form (for the jieba dictionary)."""
        return [forms[0].folded for forms in self._forms.values()]

    def _add(self, entry: CustomerEntry) -> None:
        self.entries[entry.id] = entry
        named = [(fold(entry.name), EXACT), *((fold(a), ALIAS) for a in entry.aliases)]
        forms = named + [(short, SHORT) for n in (entry.name, *entry.aliases) for short in short_forms(n)]
        for folded, score in forms:  # short_forms are folded already
            if len(folded) < MIN_FORM_CHARS:
                continue
            same = self._forms.get(folded)
            if same is None:
                same = self._forms[folded] = []
                for gram in _grams(folded):  # a form another customer has is in the bigram index already
                    self._bigrams[gram].add(folded)
            elif any(f.entry.id == entry.id for f in same):
                continue
            same.append(_Form(folded, entry, score))
            self._by_customer[entry.id].append(folded)

    def find(
        self,
        text: str,
        *,
        prefer_owner: int | None = None,
        threshold: float = 0.6,
        margin: float = 0.08,
        limit: int = 5,
    ) -> MatchResult:
        """The customer(s) `text` mentions. Exact forms beat fuzzy ones; among equally good matches the
        one owned by `prefer_owner` is chosen if it is the only such; otherwise all close ones are offered."""
        folded, positions = _fold_with_positions(text[:MAX_SCAN_CHARS * 4])
        exact = self._exact(folded, positions)
        if exact:
            matches = _longest(self._extend(folded, hit, positions) for hit in exact)
        else:
            matches = self._fuzzy(folded[:MAX_SCAN_CHARS], positions, threshold)
        if not matches:
            return MatchResult(None)
        # The mention is the first exact hit (names come first: "华远 … 宏达也在看" is about 华远), or the
        # best fuzzy one; every customer whose form overlaps that span is a candidate for it.
        if exact:
            anchor = min(matches, key=lambda m: (m.start, -(m.end - m.start)))
        else:
            anchor = max(matches, key=lambda m: (m.score, -m.start))
        group = [m for m in matches if m.start < anchor.end and anchor.start < m.end]
        best_per_customer: dict[int, CustomerMatch] = {}
        for m in sorted(group, key=lambda m: (-m.score, -(m.end - m.start), m.start)):
            best_per_customer.setdefault(m.customer_id, m)
        ranked = list(best_per_customer.values())
        top = ranked[0]
        close = [m for m in ranked if top.score - m.score <= margin]
        if len(close) == 1:
            return MatchResult(top, tuple(ranked[:limit]))
        owned = [m for m in close if prefer_owner is not None and m.owner_id == prefer_owner]
        if len(owned) == 1:
            return MatchResult(owned[0], tuple(close[:limit]))
        return MatchResult(None, tuple(close[:limit]))

    def _exact(self, folded: str, positions: list[int]) -> list[tuple[_Form, int, int]]:
        # Every occurrence of a form, found through the forms' first two characters (one look-up per
        # position for most of a message); then taken longest first, left to right, without overlaps:
        # "华远科技" is taken before "华远".
        occurrences: list[tuple[int, int]] = []  # (-length, start)
        prefixes = self._lengths_by_prefix
        forms = self._forms
        size = len(folded)
        for i in range(size - 1):
            lengths = prefixes.get(folded[i : i + 2])
            if lengths is None:
                continue
            for length in lengths:
                if i + length <= size and folded[i : i + length] in forms:
                    occurrences.append((-length, i))
        occurrences.sort()
        found: list[tuple[_Form, int, int]] = []
        taken = [False] * size
        for minus_length, i in occurrences:
            end = i - minus_length
            if any(taken[i:end]) or not _bounded(folded, positions, i, end):
                continue
            found += [(form, i, end) for form in forms[folded[i:end]]]
            for j in range(i, end):
                taken[j] = True
        return found

    def _extend(self, folded: str, hit: tuple[_Form, int, int], positions: list[int]) -> CustomerMatch:
        """An exact short hit ("华远") followed by a typo'd rest of a longer form ("科枝" for 科技) covers
        the whole typed name, so the rest is not taken for the conclusion."""
        form, start, end = hit
        best_end = end
        for other in self._forms_of(form.entry.id):
            n = len(other)
            if n <= end - start or not other.startswith(form.folded):
                continue
            for length in (n, n - 1, n + 1):
                window = folded[start : start + length]
                if (len(window) == length and 1 - _distance(window, other) / max(n, length) >= 0.7
                        and _bounded(folded, positions, start, start + length)):
                    best_end = max(best_end, start + length)
        return _match(form.entry, form.score, start, best_end, positions)

    def _forms_of(self, customer_id: int) -> list[str]:
        return self._by_customer.get(customer_id, [])

    def _fuzzy(self, folded: str, positions: list[int], threshold: float) -> list[CustomerMatch]:
        grams = set(_grams(folded))
        shared: Counter[str] = Counter()
        for gram in grams:
            shared.update(self._bigrams.get(gram, ()))
        at: dict[str, list[int]] = defaultdict(list)  # where each character occurs in the text
        for i, ch in enumerate(folded):
            at[ch].append(i)
        found: list[CustomerMatch] = []
        for form_text, count in shared.items():
            if len(form_text) < MIN_FUZZY_CHARS or count < max(1, (len(form_text) - 1) // 2):
                continue
            best = _best_window(folded, form_text, positions, at)
            if best is None:
                continue
            score, start, end = best
            if score < threshold:
                continue
            for form in self._forms[form_text]:
                # A fuzzy hit is never as good as an exact one, and short forms stay below full names.
                found.append(_match(form.entry, round(score * 0.9 * form.score, 4), start, end, positions))
        return found


def _longest(matches: Iterable[CustomerMatch]) -> list[CustomerMatch]:
    """Without the matches another customer's longer match covers: in "华远物留" the typo'd 华远物流
    (its short form 华远, extended over the typo) beats the alias 华远 of 华远科技 it contains."""
    found = list(matches)
    return [m for m in found if not any(
        o.customer_id != m.customer_id and o.start <= m.start and m.end <= o.end and o.end - o.start > m.end - m.start
        for o in found)]


def _match(entry: CustomerEntry, score: float, start: int, end: int, positions: list[int]) -> CustomerMatch:
    return CustomerMatch(entry.id, entry.name, entry.owner_id, score, positions[start], positions[end - 1] + 1)


def _grams(text: str) -> list[str]:
    return [text[i : i + 2] for i in range(len(text) - 1)]


_FOLDED_CHARS: dict[str, str] = {}  # a character → what it folds to (its alphanumeric NFKC lower-case form)
_MAX_FOLDED_CHARS = 50_000


def _fold_char(ch: str) -> str:
    folded = _FOLDED_CHARS.get(ch)
    if folded is None:
        folded = "".join(c for c in unicodedata.normalize("NFKC", ch).lower() if c.isalnum())
        if len(_FOLDED_CHARS) < _MAX_FOLDED_CHARS:
            _FOLDED_CHARS[ch] = folded
    return folded


def _fold_with_positions(text: str) -> tuple[str, list[int]]:
    """The folded text and, for each folded character, its index in the original text."""
    out: list[str] = []
    positions: list[int] = []
    for index, ch in enumerate(text):
        folded = _FOLDED_CHARS.get(ch)
        if folded is None:
            folded = _fold_char(ch)
        if folded:
            out.append(folded)
            positions.extend([index] * len(folded))
    return "".join(out), positions


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _bounded(folded: str, positions: list[int], start: int, end: int) -> bool:
    """folded[start:end] does not cut a Latin word of the original text in two ("acme" is not in "acmeist";
    "ACME Corp" typed as "acme, corp" still is). Chinese has no word boundaries: always true there."""
    if (start > 0 and _latin(folded[start]) and _latin(folded[start - 1])
            and positions[start] - positions[start - 1] <= 1):
        return False
    return not (end < len(folded) and _latin(folded[end - 1]) and _latin(folded[end])
                and positions[end] - positions[end - 1] <= 1)


def _best_window(text: str, form: str, positions: list[int],
                 at: dict[str, list[int]]) -> tuple[float, int, int] | None:
    """The window of `text` (length len(form) ± 1) most similar to `form`: (similarity, start, end).

    Typos keep at least one end of a name, so only windows that start with the form's first character
    or end with its last are compared (`at`: where each character occurs in text)."""
    best: tuple[float, int, int] | None = None
    n = len(form)
    latin = _latin(form[0]) or _latin(form[-1])
    firsts, lasts = at.get(form[0], []), at.get(form[-1], [])
    for length in (n, n - 1, n + 1):
        if length < MIN_FUZZY_CHARS - 1 or length > len(text):
            continue
        last_start = len(text) - length
        starts = sorted({i for i in firsts if i <= last_start}
                        | {j - length + 1 for j in lasts if 0 <= j - length + 1 <= last_start})
        for start in starts:
            window = text[start : start + length]
            if latin and not _bounded(text, positions, start, start + length):
                continue
            sim = 1 - _distance(window, form) / max(n, length)
            if best is None or sim > best[0]:
                best = (sim, start, start + length)
    return best


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (names are short: the quadratic table is cheap)."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


