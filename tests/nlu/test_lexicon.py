"""The jieba Lexicon: domain words stay whole, tags, live customer names, hostile input (R14, R15, R16)."""

from __future__ import annotations

import copy
import time
import unicodedata
from pathlib import Path

import jieba
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import ConfigError, FunnelSettings, NluSettings, Settings
from bot.nlu.lexicon import TAGS, DictEntry, Lexicon, parse_dictionary

SHIPPED = Path(__file__).resolve().parents[2] / "bot" / "nlu" / "data" / "sales_dict.txt"

HOSTILE = [
    "\ud800",
    "\x00\x1f",
    "%_%",
    "'; DROP TABLE users;--",
    "😀" * 500,
    "啊" * 10000,
    "",
    " \t\r\n\u3000",
    "\ud83d\ude00\udfff王总\ud800预算",
    "\u200b\u200d\ufeff👨‍👩‍👧",
    "ＣＥＯ１２３",
    "<script>alert(1)</script>",
    "a" * 10000,
]


def shipped_entries() -> list[DictEntry]:
    return parse_dictionary(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))


def _printable(token: str) -> bool:
    return all(not ch.isspace() and not unicodedata.category(ch).startswith("C") for ch in token)


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ("今日拜访完成，客户很满意", "拜访完成"),
        ("会议纪要已经发群里了", "会议纪要"),
        ("客户签字页已上传", "客户签字页"),
        ("需求调研报告也交了", "需求调研报告"),
        ("痛点是对账难", "对账难"),
        ("现在还靠人工统计", "人工统计"),
        ("IT总监是关键人", "IT总监"),
        ("华为云和腾讯云都在投标", "腾讯云"),
        ("这个项目Q3立项", "立项"),
        ("预算审批还没过", "预算审批"),
        ("下周安排POC", "POC"),
        ("竞品分析提交了吗", "竞品分析提交"),
    ],
)
def test_domain_words_are_whole_tokens(lexicon: Lexicon, text: str, whole: str) -> None:
    assert whole in lexicon.cut(text)


def test_shipped_dictionary_is_big_enough_and_every_tagged_word_cuts_whole(lexicon: Lexicon) -> None:
    entries = shipped_entries()
    tagged = [e for e in entries if e.tag]
    assert len(tagged) >= 150
    assert len({e.word for e in entries}) == len(entries)  # no word listed twice
    for tag in ("competitor", "budget", "decision_maker", "pain_point", "timeline", "sales_term"):
        assert sum(e.tag == tag for e in tagged) >= 15, tag
    split = [e.word for e in tagged if lexicon.cut(e.word) != [e.word]]
    assert split == []
    assert all(e.freq is not None and e.freq >= 1 for e in entries)


def test_segmentation_guards_keep_common_phrases(lexicon: Lexicon) -> None:
    assert "上线" not in lexicon.cut("线上线下一体化")
    assert lexicon.tag_of("线上") is None  # a guard has no tag


def test_funnel_words_from_settings_are_tagged(lexicon: Lexicon) -> None:
    # R6 defaults: stages, their aliases and the gates' key actions.
    assert lexicon.tag_of("需求诊断") == "stage"
    assert lexicon.tag_of("签单") == "stage"
    assert lexicon.tag_of("客户签字页") == "key_action"
    assert lexicon.tag_of("POC测试报告归档") == "key_action"
    assert lexicon.cut("POC测试报告归档了") == ["POC测试报告归档", "了"]


@pytest.mark.parametrize(
    ("word", "tag"),
    [
        ("用友", "competitor"),
        ("Salesforce", "competitor"),
        ("salesforce", "competitor"),
        ("预算", "budget"),
        ("账期", "budget"),
        ("CEO", "decision_maker"),
        ("ceo", "decision_maker"),
        ("ＣＥＯ", "decision_maker"),
        ("拍板", "decision_maker"),
        ("对账难", "pain_point"),
        ("库存积压", "pain_point"),
        ("月底", "timeline"),
        ("Q4", "timeline"),
        ("拜访完成", "sales_term"),
        ("纪要", "sales_term"),
        ("报价", "stage"),  # a stage alias first; also a budget word (tags_of)
        ("需求调研报告", "key_action"),
        ("今天", None),
        ("", None),
        ("\ud800", None),
    ],
)
def test_tag_of(lexicon: Lexicon, word: str, tag: str | None) -> None:
    assert lexicon.tag_of(word) == tag
    assert tag is None or tag in TAGS


def test_tags_of_lists_every_tag(lexicon: Lexicon) -> None:
    assert lexicon.tags_of("报价") == {"stage", "budget"}
    assert lexicon.tags_of("回款") == {"stage", "sales_term"}
    assert lexicon.tags_of("不存在的词") == frozenset()


def test_add_words_is_idempotent_and_makes_customer_names_whole(lexicon: Lexicon) -> None:
    """R14: "今日拜访完成瀚辰数科1小时" names the customer as one token once it is known.

    (The lexicon is shared by the whole run: the names here are used by no other test.)"""
    assert lexicon.add_words(["瀚辰数科", "瀚辰"]) == 2
    assert lexicon.add_words(["瀚辰数科", "瀚辰", " 瀚辰数科 "]) == 0
    assert lexicon.cut("今日拜访完成瀚辰数科1小时") == ["今日", "拜访完成", "瀚辰数科", "1", "小时"]
    assert lexicon.tag_of("瀚辰数科") == "customer"
    assert {"瀚辰数科", "瀚辰"} <= lexicon.words_tagged("customer")


def test_add_words_with_another_tag_counts_the_new_pair(lexicon: Lexicon) -> None:
    assert lexicon.add_words(["鼎泰丰源测试"], tag="customer") == 1
    assert lexicon.add_words(["鼎泰丰源测试"], tag="competitor") == 1
    assert lexicon.tags_of("鼎泰丰源测试") == {"customer", "competitor"}
    assert lexicon.tag_of("鼎泰丰源测试") == "customer"


def test_add_words_skips_unusable_words(lexicon: Lexicon) -> None:
    assert lexicon.add_words(["", "   ", "金 鼎", "金\t鼎", "客" * 51]) == 0
    assert lexicon.tag_of("金 鼎") is None
    assert lexicon.add_words(["客" * 50]) == 1


def test_add_words_rejects_an_unknown_tag(lexicon: Lexicon) -> None:
    with pytest.raises(ValueError, match="unknown tag 'vip'"):
        lexicon.add_words(["某某"], tag="vip")


def test_full_width_customer_names_match_either_form(lexicon: Lexicon) -> None:
    lexicon.add_words(["ＺＸ智联"])
    assert lexicon.tag_of("ZX智联") == "customer"
    assert "ZX智联" in lexicon.cut("今天去了ZX智联")


def test_tokenize_gives_spans_into_the_text(lexicon: Lexicon) -> None:
    text = "纪要： 和王总聊了\t预算50万"
    spans = lexicon.tokenize(text)
    assert [t for t, _, _ in spans] == lexicon.cut(text)
    assert all(text[start:end] == token for token, start, end in spans)


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_never_raises(lexicon: Lexicon, text: str) -> None:
    tokens = lexicon.cut(text)
    assert all(_printable(t) for t in tokens)
    assert all(t.encode("utf-8") for t in tokens)  # storable
    lexicon.tokenize(text)
    keywords = lexicon.keywords(text, 8)
    assert all(w.encode("utf-8") for w in keywords.words)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200))
def test_any_text_never_raises(lexicon: Lexicon, text: str) -> None:
    assert all(_printable(t) for t in lexicon.cut(text))
    keywords = lexicon.keywords(text, 5)
    assert len(keywords.words) <= 5
    assert all(w.encode("utf-8") for w in keywords.words)


def test_long_text_is_cut_quickly(lexicon: Lexicon) -> None:
    started = time.perf_counter()
    lexicon.cut("啊" * 10000)
    lexicon.cut("纪要：和华远王总聊了，预算50万左右。" * 500)
    assert time.perf_counter() - started < 5  # generous: a 2-CPU machine shared with other runs


def test_the_dictionary_cache_is_kept_in_cache_dir(lexicon: Lexicon) -> None:
    cache = Path(lexicon.tokenizer.tmp_dir) / f"salesbot-jieba-{jieba.__version__}.cache"
    assert cache.is_file()
    assert lexicon.tokenizer is not jieba.dt


def test_a_missing_user_dict_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "words.txt"
    with pytest.raises(ConfigError, match=r"\[nlu\] user_dict: file not found: .*nope/words\.txt"):
        Lexicon.load(Settings(nlu=NluSettings(user_dict=str(missing))))


def test_a_cache_dir_that_cannot_be_created_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"\[nlu\] cache_dir: cannot create"):
        Lexicon.load(Settings(nlu=NluSettings(cache_dir=str(blocker / "sub"))))


def test_user_dict_and_custom_funnel_are_loaded(
    lexicon: Lexicon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lexicon.load reads the user dictionary and the settings' funnel into a new Lexicon.

    Its jieba tokenizer is a copy of the session's (a real one costs ~1 s; the session fixture
    covers that path); the tags live in the Lexicon, so they start empty all the same.
    """

    def clone(cache_dir: str) -> object:
        tokenizer = copy.copy(lexicon.tokenizer)
        tokenizer.FREQ = dict(lexicon.tokenizer.FREQ)
        return tokenizer

    monkeypatch.setattr("bot.nlu.lexicon._new_tokenizer", clone)
    user = tmp_path / "words.txt"
    user.write_text(
        "\ufeff# our own words\n\n云启星辰 competitor\n链动未来 5000 customer\n低代码平台 9000\n", encoding="utf-8"
    )
    funnel = FunnelSettings(
        stages=("线索", "试点", "签约"), gates={"试点": ("试点方案确认书",)}, aliases={"小范围试用": "试点"}
    )
    settings = Settings(nlu=NluSettings(user_dict=str(user)), funnel=funnel)
    other = Lexicon.load(settings, prepare_keywords=False)
    assert other.tag_of("云启星辰") == "competitor"
    assert other.tag_of("链动未来") == "customer"
    assert other.tag_of("低代码平台") is None
    assert "低代码平台" in other.cut("他们想要低代码平台")
    assert other.tag_of("试点") == "stage"
    assert other.tag_of("小范围试用") == "stage"
    assert other.tag_of("试点方案确认书") == "key_action"
    assert other.tag_of("需求诊断") is None  # not a stage of this funnel
    assert "云启星辰" in other.keywords("竞品是云启星辰", 5).tags["competitor"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("好词 12 competitor extra\n", r"line 1: expected 'word \[freq\] \[tag\]'"),
        ("# c\n好词 0 budget\n", r"line 2: frequency must be a positive integer"),
        ("好词 budgt\n", r"line 1: unknown tag 'budgt'"),
        ("好词 12 budget budget\n", r"line 1: expected"),
        ("好" * 51 + "\n", r"line 1: word longer than 50"),
    ],
)
def test_bad_dictionary_lines_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^my\.txt, " + message):
        parse_dictionary(text, "my.txt")


def test_dictionary_lines() -> None:
    assert parse_dictionary("\ufeff# c\n\n甲乙 7 budget\n丙丁 timeline\n戊己\n", "x") == [
        DictEntry("甲乙", 7, "budget"),
        DictEntry("丙丁", None, "timeline"),
        DictEntry("戊己", None, None),
    ]
