"""Cleaning chat text without moving it: every function here keeps one character per character, so a
span found in the folded text is the same span in the cleaned original (which is what gets stored)."""

from __future__ import annotations

import unicodedata

# Characters that are not text: controls (except newline/tab), lone surrogates, unassigned, private use.
_DROP_CATEGORIES = frozenset({"Cc", "Cs", "Cn", "Co"})
# Symbols (emoji, dingbats) and format characters (zero-width joiners, variation selectors).
_BLANK_CATEGORIES = frozenset({"So", "Sk", "Cf"})


def clean(text: str) -> str:
    """Text safe to store and show: controls and lone surrogates become spaces, emoji stay."""
    return "".join(
        " " if unicodedata.category(ch) in _DROP_CATEGORIES and ch not in "\n\t" else ch for ch in text
    )


def fold(text: str) -> str:
    """Same length as `text`: per character NFKC + lower case where that stays one character
    (full-width "，１ｈ" → ",1h"), emoji and format characters blanked, whitespace made a plain space."""
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace() or category in _DROP_CATEGORIES or category in _BLANK_CATEGORIES:
            out.append(" ")
            continue
        folded = unicodedata.normalize("NFKC", ch).lower()
        out.append(folded if len(folded) == 1 else ch)
    return "".join(out)


def tidy(text: str) -> str:
    """A stored fragment: inner whitespace collapsed, stray punctuation trimmed at both ends."""
    text = " ".join(text.split())
    return text.strip(" ,，.。;；:：、!！?？~～-—_|/\\()（）[]【】\"'“”‘’")


def blank(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` with the given spans replaced by spaces (length kept)."""
    chars = list(text)
    for start, end in spans:
        for i in range(max(0, start), min(len(chars), end)):
            chars[i] = " "
    return "".join(chars)


def meaningful(text: str) -> bool:
    """Has a letter or digit (not only punctuation, emoji or spaces)."""
    return any(ch.isalnum() for ch in fold(text))
