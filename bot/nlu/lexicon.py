"""One jieba tokenizer per process, with the sales domain dictionary and its tags (R14, R15, R16).

`Lexicon.load(settings)` builds it at start-up (blocking, ~1 s and ~190 MiB resident with keyword
extraction ready, ~0.6 s and ~95 MiB without: run it through `asyncio.to_thread`); nothing is loaded
at import time and there is no module-level tokenizer — the global `jieba.dt` is never used.

Dictionaries (the shipped `bot/nlu/data/sales_dict.txt`, then `[nlu] user_dict` if set) are read
here, not by `jieba.load_userdict`, so they may hold comments. Format, one entry a line:

    word [freq] [tag]        # fields separated by whitespace; "#" starts a comment line

`freq` is a positive integer (jieba's word frequency; omitted = just enough to keep the word whole);
`tag` is one of `TAGS`. Words may not contain whitespace or be longer than 50 characters.

Thread safety: jieba's `cut` is pure Python and keeps no per-call state, but `add_words` changes the
tokenizer's dictionary. Build the Lexicon in a worker thread, then share the one instance on the event
loop thread only (handlers call `cut`/`keywords`, the customer refresh calls `add_words` there too).
"""

from __future__ import annotations

import copy
import importlib.resources
import logging
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jieba

from bot.config import ConfigError, Settings
from bot.nlu.keywords import Keywords, extract_keywords

# The domain tags, in the order tag_of() prefers when a word has several: words configured for this
# deployment (funnel, customers) before the shipped dictionary's, and sales_term (the most generic) last.
TAGS: tuple[str, ...] = (
    "key_action",
    "stage",
    "customer",
    "competitor",
    "decision_maker",
    "budget",
    "pain_point",
    "timeline",
    "sales_term",
)
MAX_WORD_CHARS = 50
# Words added without a frequency get at least this (the shipped dictionary uses the same floor):
# enough to stay whole next to ordinary words, small next to jieba's total of ~60 million.
MIN_WORD_FREQ = 3000
SHIPPED_DICT = "sales_dict.txt"


@dataclass(frozen=True)
class DictEntry:
    """One dictionary line: the word, its jieba frequency (None = computed) and its tag (None = none)."""

    word: str
    freq: int | None
    tag: str | None


def normalize(word: str) -> str:
    """The key words are compared by: NFKC (full-width → ASCII) and case-folded ("ceo" is "CEO")."""
    return unicodedata.normalize("NFKC", word).casefold()


def _usable(word: str) -> bool:
    return 0 < len(word) <= MAX_WORD_CHARS and not any(ch.isspace() for ch in word)


def parse_dictionary(text: str, source: str) -> list[DictEntry]:
    """Parse a dictionary file's text; a bad line raises ConfigError naming `source` and the line."""
    entries: list[DictEntry] = []
    for lineno, raw in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source}, line {lineno}"
        fields = line.split()
        if len(fields) > 3:
            raise ConfigError(f"{where}: expected 'word [freq] [tag]', got {line!r}")
        word, rest = fields[0], fields[1:]
        freq: int | None = None
        if rest and rest[0].isascii() and rest[0].isdigit():
            freq = int(rest.pop(0))
            if freq < 1:
                raise ConfigError(f"{where}: frequency must be a positive integer, got {freq}")
        tag = rest.pop(0) if rest else None
        if rest:
            raise ConfigError(f"{where}: expected 'word [freq] [tag]', got {line!r}")
        if tag is not None and tag not in TAGS:
            raise ConfigError(f"{where}: unknown tag {tag!r} (known: {', '.join(TAGS)})")
        if len(word) > MAX_WORD_CHARS:
            raise ConfigError(f"{where}: word longer than {MAX_WORD_CHARS} characters")
        entries.append(DictEntry(word, freq, tag))
    return entries


def _shipped_dictionary() -> str:
    return (importlib.resources.files("bot.nlu") / "data" / SHIPPED_DICT).read_text(encoding="utf-8")


def _read_user_dictionary(path_text: str) -> tuple[str, str]:
    path = Path(path_text).expanduser()
    try:
        return str(path), path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"[nlu] user_dict: file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"[nlu] user_dict: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"[nlu] user_dict: cannot read {path}: {exc.strerror or exc}") from None


def _new_tokenizer(cache_dir: str) -> Any:
    """An initialised jieba.Tokenizer whose dictionary cache lives in cache_dir ("" = system temp dir)."""
    tokenizer = jieba.Tokenizer()
    if cache_dir:
        path = Path(cache_dir).expanduser()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"[nlu] cache_dir: cannot create {path}: {exc.strerror or exc}") from None
        tokenizer.tmp_dir = str(path)
    # jieba trusts a cache of its default dictionary without comparing dates: name it after the
    # jieba version so an upgrade with a new dict.txt never reads the old one.
    tokenizer.cache_file = f"salesbot-jieba-{jieba.__version__}.cache"
    tokenizer.initialize()
    return tokenizer


class Lexicon:
    """A jieba tokenizer with the sales domain dictionary, the funnel's words and live customer names.

    Build it with `Lexicon.load(settings)`; one instance per process, shared by the event loop thread.
    """

    def __init__(self, tokenizer: Any) -> None:
        """Wrap an initialised `jieba.Tokenizer` (use `Lexicon.load` rather than calling this)."""
        self._tokenizer = tokenizer
        self._tags: dict[str, set[str]] = {}  # normalize(word) -> its tags
        self._tfidf: Any = None

    @classmethod
    def load(cls, settings: Settings, *, prepare_keywords: bool = True) -> Lexicon:
        """Build the Lexicon (blocking, ~1 s): jieba, the shipped and user dictionaries, the funnel words.

        A missing or malformed `[nlu] user_dict` raises ConfigError before jieba is loaded. With
        `prepare_keywords` (the default) jieba's TF-IDF table is loaded here too, so the first
        `keywords()` call does not block the event loop for ~0.5 s; without it a process that only
        cuts text saves that time and ~95 MiB (jieba.analyse loads its IDF and part-of-speech tables).
        """
        shipped = parse_dictionary(_shipped_dictionary(), f"bot/nlu/data/{SHIPPED_DICT}")
        user: list[DictEntry] = []
        if settings.nlu.user_dict:
            path, text = _read_user_dictionary(settings.nlu.user_dict)
            user = parse_dictionary(text, f"[nlu] user_dict {path}")
        # jieba's own logger prints four DEBUG lines to stderr on every load; only its level changes here.
        jieba.setLogLevel(logging.WARNING)
        lexicon = cls(_new_tokenizer(settings.nlu.cache_dir))
        lexicon.add_entries(shipped)
        lexicon.add_entries(user)
        funnel = settings.funnel
        lexicon.add_words([*funnel.stages, *funnel.aliases], tag="stage")
        lexicon.add_words([action for actions in funnel.gates.values() for action in actions], tag="key_action")
        if prepare_keywords:
            lexicon.tfidf()
        return lexicon

    @property
    def tokenizer(self) -> Any:
        """The underlying `jieba.Tokenizer` (read it; change its words only through this class)."""
        return self._tokenizer

    def add_entries(self, entries: Iterable[DictEntry]) -> int:
        """Add dictionary entries (see `parse_dictionary`); returns how many (word, tag) pairs were new.

        An entry with a frequency sets it (a later file overrides an earlier one); without one the
        word gets just enough to stay whole. Untagged entries only guide segmentation.
        """
        new = 0
        for entry in entries:
            if not _usable(entry.word):
                continue
            self._ensure_whole(entry.word, entry.freq)
            if entry.tag is not None and self._tag(entry.word, entry.tag):
                new += 1
        return new

    def add_words(self, words: Iterable[str], tag: str = "customer") -> int:
        """Make words whole tokens with a tag (live customer names, aliases); idempotent.

        Returns how many (word, tag) pairs were new. Blank words, words longer than 50 characters and
        words with inner whitespace are skipped. Words are never removed: call it again with the
        current names whenever customers change.
        """
        if tag not in TAGS:
            raise ValueError(f"unknown tag {tag!r} (known: {', '.join(TAGS)})")
        new = 0
        for raw in words:
            word = raw.strip()
            if not _usable(word):
                continue
            if tag in self._tags.get(normalize(word), ()):
                continue
            self._ensure_whole(word, None)
            self._tag(word, tag)
            new += 1
        return new

    def _ensure_whole(self, word: str, freq: int | None) -> None:
        # Register the word as written and in its NFKC form (keywords() cuts NFKC text).
        for form in dict.fromkeys((word, unicodedata.normalize("NFKC", word))):
            if freq is not None:
                self._tokenizer.add_word(form, freq)
                continue
            wanted = max(int(self._tokenizer.suggest_freq(form)), MIN_WORD_FREQ)
            if wanted > (self._tokenizer.FREQ.get(form) or 0):
                self._tokenizer.add_word(form, wanted)

    def _tag(self, word: str, tag: str) -> bool:
        tags = self._tags.setdefault(normalize(word), set())
        if tag in tags:
            return False
        tags.add(tag)
        return True

    def tokenize(self, text: str) -> list[tuple[str, int, int]]:
        """Tokens with their spans, `(token, start, end)` into text; whitespace and control characters dropped.

        Never raises on a str: lone surrogates, control characters, emoji and long texts are fine.
        """
        return [
            (token, start, end)
            for token, start, end in cast(Iterator[tuple[str, int, int]], self._tokenizer.tokenize(text))
            if _meaningful(token)
        ]

    def cut(self, text: str) -> list[str]:
        """The text's tokens (jieba, HMM on), without whitespace or control-character tokens; never raises."""
        return [token for token in cast(Iterator[str], self._tokenizer.cut(text)) if _meaningful(token)]

    def tags_of(self, word: str) -> frozenset[str]:
        """Every domain tag of a word (case- and width-insensitive); empty when it has none."""
        return frozenset(self._tags.get(normalize(word), ()))

    def tag_of(self, word: str) -> str | None:
        """The word's domain tag (one of TAGS, earlier in TAGS preferred when it has several), or None.

        "报价" is both a stage alias and a budget word: tag_of says "stage", tags_of says both.
        """
        tags = self._tags.get(normalize(word))
        if not tags:
            return None
        return next(tag for tag in TAGS if tag in tags)

    def words_tagged(self, tag: str) -> frozenset[str]:
        """The (normalized) words that carry a tag, e.g. every customer name added so far."""
        return frozenset(word for word, tags in self._tags.items() if tag in tags)

    def tfidf(self) -> Any:
        """jieba's TF-IDF extractor bound to this tokenizer, built once (on first use, ~0.5 s)."""
        if self._tfidf is None:
            with warnings.catch_warnings():
                # jieba.analyse leaves idf.txt open at import (a ResourceWarning); nothing to fix here.
                warnings.simplefilter("ignore", ResourceWarning)
                import jieba.analyse

            # A shallow copy shares the module's ~37 MiB IDF table instead of parsing idf.txt again.
            tfidf = copy.copy(jieba.analyse.default_tfidf)
            tfidf.tokenizer = self._tokenizer
            tfidf.stop_words = set(tfidf.stop_words)
            self._tfidf = tfidf
        return self._tfidf

    def keywords(self, text: str, topk: int) -> Keywords:
        """R15: the note's keywords and domain findings; see `bot.nlu.keywords.extract_keywords`."""
        return extract_keywords(self, text, topk)


def _meaningful(token: str) -> bool:
    # jieba yields each non-word character as its own token: drop whitespace, control characters,
    # lone surrogates and other unprintable ones (they cannot be stored as UTF-8 either).
    return any(not ch.isspace() and not unicodedata.category(ch).startswith("C") for ch in token)
