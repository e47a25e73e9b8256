"""R15 meeting notes: keywords from jieba TF-IDF plus the domain dictionary (competitors, budget,
decision makers, pain points, timeline)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.nlu.keywords import NOTE_TAGS, STOP_WORDS, Keywords, _is_word, extract_keywords
from bot.nlu.lexicon import Lexicon

NOTE = (
    "纪要：和华远王总聊了，预算50万左右，目前用的是用友，痛点是对账难、人工统计出错，"
    "希望月底前上线，竞品还有金蝶在跟"
)


def test_a_realistic_note(lexicon: Lexicon) -> None:
    """R15: competitors, budget (word and amount), decision maker, pain points and timeline."""
    keywords = extract_keywords(lexicon, NOTE, 8)
    tags = keywords.tags
    assert {"用友", "金蝶"} <= set(tags["competitor"])
    assert {"预算", "50万"} <= set(tags["budget"])
    assert "王总" in tags["decision_maker"]
    assert "对账难" in tags["pain_point"] and "出错" in tags["pain_point"]
    assert {"月底", "上线"} <= set(tags["timeline"])
    assert list(tags) == [tag for tag in NOTE_TAGS if tag in tags]
    # Eight words, all of them findings; one of each tag comes first, specific before generic.
    assert len(keywords.words) == 8
    assert keywords.words[:5] == ("用友", "50万", "王总", "对账难", "月底")
    found = {word for words in tags.values() for word in words}
    assert set(keywords.words) <= found
    assert tags["competitor"] == ("用友", "金蝶", "竞品")
    assert tags["budget"] == ("50万", "预算")


def test_every_finding_is_a_keyword_when_topk_allows(lexicon: Lexicon) -> None:
    keywords = extract_keywords(lexicon, NOTE, 20)
    found = [word for words in keywords.tags.values() for word in words]
    assert set(found) <= set(keywords.words)
    assert keywords.words[: len(set(found))] == tuple(dict.fromkeys(keywords.words[: len(set(found))]))
    assert len(keywords.words) > len(set(found))  # then TF-IDF words (华远, 纪要 is a stop word)
    assert "纪要" not in keywords.words


@pytest.mark.parametrize("topk", [0, 1, 2, 3, 5, 8, 13, 30])
def test_topk_is_respected_and_findings_come_first(lexicon: Lexicon, topk: int) -> None:
    keywords = extract_keywords(lexicon, NOTE, topk)
    found = {word for words in keywords.tags.values() for word in words}
    assert len(keywords.words) <= topk
    assert len(keywords.words) == len(set(keywords.words))
    assert all(word in found for word in keywords.words[: min(topk, len(found))])
    assert sum(len(words) for words in keywords.tags.values()) == 12  # tags are never cut to topk


def test_negative_topk_gives_no_words(lexicon: Lexicon) -> None:
    assert extract_keywords(lexicon, NOTE, -1).words == ()


@pytest.mark.parametrize("text", ["", "   \n\t", "，。！？", "\ud800", "\x00"])
def test_empty_text_gives_empty_keywords(lexicon: Lexicon, text: str) -> None:
    assert extract_keywords(lexicon, text, 8) == Keywords()
    assert Keywords() == Keywords(words=(), tags={})


def test_stop_words_numbers_single_characters_and_punctuation_are_never_keywords(lexicon: Lexicon) -> None:
    text = "我们今天和客户聊了一下，目前的情况是 123 4567 3.5 ，。！？…… 的 了 啊 a b 😀 50% 5G"
    assert extract_keywords(lexicon, text, 10) == Keywords()


def test_tfidf_ranks_the_other_words_like_jieba(lexicon: Lexicon) -> None:
    """Without domain findings the order is jieba's extract_tags on this tokenizer (minus stop words)."""
    text = "仓库管理系统升级，物流配送环节复杂，供应链协同困难，仓库盘点慢，物流成本"
    keywords = extract_keywords(lexicon, text, 6)
    untagged = [w for w in keywords.words if not any(w in ws for ws in keywords.tags.values())]
    tfidf = lexicon.tfidf()
    assert tfidf.tokenizer is lexicon.tokenizer
    expected = [
        w for w in tfidf.extract_tags(text, topK=None)
        if w not in STOP_WORDS and _is_word(w) and not (lexicon.tags_of(w) & set(NOTE_TAGS))
    ]
    assert untagged == expected[: len(untagged)]
    assert untagged[0] == "仓库"  # twice in the note


def test_the_tfidf_extractor_is_built_once_per_lexicon(lexicon: Lexicon) -> None:
    assert lexicon.tfidf() is lexicon.tfidf()


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("报价 30w", "30万"),
        ("预算50万左右", "50万"),
        ("50万的预算", "50万"),
        ("合同金额约120万元", "120万"),
        ("预算：1.2亿", "1.2亿"),
        ("采购预算8000元", "8000元"),
        ("报价五万五", None),  # not a unit the finder reads as one amount: no guess
        ("首付30%，账期90天", None),
        ("年营收5亿，员工两千人", None),  # an amount, but not in a clause about money
        ("预算没定，他们年营收5亿", None),
        ("采购了50万元的设备", "50万"),  # 万元 says money
    ],
)
def test_amounts_in_a_money_clause_are_budget(lexicon: Lexicon, text: str, amount: str | None) -> None:
    budget = extract_keywords(lexicon, text, 8).tags.get("budget", ())
    if amount is None:
        assert not any(w[0].isdigit() for w in budget)
    else:
        assert amount in budget


@pytest.mark.parametrize(
    ("text", "people"),
    [
        ("见完张总，他说年底前定", ["张总"]),
        ("李总监觉得报价太贵", ["李总监"]),
        ("今天陪访了王经理", ["王经理"]),
        ("赵主任和钱局长、孙处长都在，刘董也来了", ["赵主任", "钱局长", "孙处长", "刘董"]),
        ("和欧阳总吃了饭", ["欧阳总"]),
        ("本周总结：提高总体效率", []),
        ("王总结了一下需求", []),
        ("50万总价不变", []),
        ("和总监聊了，向总监汇报", []),
        ("王副总和陈总经理都同意", ["王副总", "陈总经理"]),
    ],
)
def test_people_named_by_title_are_decision_makers(lexicon: Lexicon, text: str, people: list[str]) -> None:
    found = extract_keywords(lexicon, text, 8).tags.get("decision_maker", ())
    assert list(found) == people


def test_width_and_case_are_folded(lexicon: Lexicon) -> None:
    keywords = extract_keywords(lexicon, "ＣＥＯ说ceo办公室在谈ＳＡＰ，预算５０万", 8)
    assert keywords.tags["decision_maker"] == ("CEO",)
    assert keywords.tags["competitor"] == ("SAP",)
    assert "50万" in keywords.tags["budget"]


def test_keywords_are_deterministic_and_the_method_matches_the_function(lexicon: Lexicon) -> None:
    assert lexicon.keywords(NOTE, 8) == extract_keywords(lexicon, NOTE, 8) == extract_keywords(lexicon, NOTE, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lexicon.keywords(NOTE, 8).words = ()  # type: ignore[misc]
