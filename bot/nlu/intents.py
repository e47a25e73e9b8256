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
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from bot.config import CaptureSettings, FunnelSettings
from bot.nlu.clauses import (
    adjacent,
    amount_of,
    bigrams,
    conclusion_of,
    next_step_in,
    on_token_boundary,
    one_to_one,
    opens_with,
    reported_visit,
    visit_before,
    visit_trigger,
)
from bot.nlu.customers import CustomerIndex, MatchResult
from bot.nlu.parsed import EXAMPLES as EXAMPLES
from bot.nlu.parsed import Intent as Intent
from bot.nlu.parsed import Parsed as Parsed
from bot.nlu.parsed import Token
from bot.nlu.parsed import Tokenizer as Tokenizer
from bot.nlu.quantities import find_duration
from bot.nlu.text import blank, clean, fold, tidy
from bot.nlu.vocabulary import (
    ACTION_NOUN_RE,
    ARRIVE_RE,
    ARRIVE_TAIL_RE,
    CAME_OUT_RE,
    CONFIRM_RE,
    CONTACT_RE,
    DONE_MARKERS,
    FORCE_RE,
    GLUED_DONE_RE,
    LEADING_TIME_RE,
    MAX_CONTACTS,
    MORE_CONTACTS_RE,
    MOVE_EN_RE,
    MOVE_RE,
    NEXT_STAGE_RE,
    NOT_YET_RE,
    NOTE_RE,
    PIPELINE_RE,
    QUESTION_LEAD_RE,
    QUESTION_RE,
    REASON_RE,
    STANDUP_RE,
    VISIT_DONE_WORDS,
    WENT_RE,
)


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
        grams = bigrams(fold(clean(text)))
        scored: list[tuple[float, str]] = []
        for examples in EXAMPLES.values():
            for example in examples:
                other = bigrams(fold(example))
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

    def _tokens(self, folded: str) -> list[Token]:
        tokens: list[Token] = []
        cursor = 0
        for word in self.tokenizer.cut(folded):
            if not word.strip():
                continue
            at = folded.find(word, cursor)
            if at < 0:
                continue
            tokens.append(Token(word, at, at + len(word)))
            cursor = at + len(word)
        return tokens

    def _stage_move(self, original: str, folded: str, tokens: Sequence[Token], now: datetime,
                    customers: CustomerIndex, user_id: int | None) -> Parsed | None:
        en = MOVE_EN_RE.search(folded)  # "move 华远 to 报价"
        if en is not None:
            stage = self.find_stage(folded, en.end())
            next_stage = NEXT_STAGE_RE.match(folded, en.end()) is not None
            if (next_stage or (stage is not None and not folded[en.end():stage[1]].strip())) and not visit_before(
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
            if not on_token_boundary(tokens, m.start()):
                continue
            if visit_before(folded, tokens, m.start()):
                return None  # "拜访完成 华远 1小时 客户同意进入报价" is a check-in; the move is part of its conclusion
            head = blank(folded, [(m.start(), len(folded))])
            customer = self._customer(head, customers, user_id)
            if not customer.found:
                customer = self._customer(folded, customers, user_id)
            return Parsed(Intent.STAGE_MOVE, original.strip(), leading=opens_with(folded, customer, m.start()),
                          customer=customer, stage=stage[0] if stage else None, next_stage=next_stage)
        bare = NEXT_STAGE_RE.search(folded)  # "华远 下一阶段"
        if bare is not None and not visit_before(folded, tokens, bare.start()):
            customer = self._customer(blank(folded, [(bare.start(), bare.end())]), customers, user_id)
            if customer.found:
                return Parsed(Intent.STAGE_MOVE, original.strip(), leading=opens_with(folded, customer, bare.start()),
                              customer=customer, next_stage=True)
        return None

    def _arrive(self, original: str, folded: str, tokens: Sequence[Token], now: datetime,
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

    def _visit_done(self, original: str, folded: str, tokens: Sequence[Token], now: datetime,
                    customers: CustomerIndex, user_id: int | None) -> Parsed | None:
        trigger = visit_trigger(tokens)
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
            trigger = reported_visit(folded, tokens)
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
        duration = find_duration(one_to_one(rest))
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
            if alone and any(adjacent(without_trigger, anchor, who) for anchor in anchors):
                spans.append((cm.start(), who[1]))
                cut_contact = True
        if named is not None and not cut_contact and folded[named.end : named.end + 1] == "的":
            spans.append((named.end, named.end + 1))  # "华远的需求很明确" → "需求很明确"
        rest = blank(folded, spans)
        conclusion = conclusion_of(original, rest)
        next_date, next_step = next_step_in(original, rest, now)
        amount = amount_of(rest)
        return Parsed(
            Intent.VISIT_DONE, original.strip(), leading=verb_start <= 2 or t_start == 0, customer=customer,
            duration_minutes=int(duration.value) if duration else None, conclusion=conclusion,
            next_date=next_date, next_step=next_step, contact=contact,
            amount=Decimal(amount.value) if amount is not None else None,
        )

    def _went_to(self, folded: str, tokens: Sequence[Token], customers: CustomerIndex,
                 user_id: int | None) -> tuple[list[tuple[int, int]], MatchResult] | None:
        """"去了趟宏达零售", "跑了一趟华远", "刚从华远出来": a visit, when a known customer is named right there."""
        for m in WENT_RE.finditer(folded):
            if not on_token_boundary(tokens, m.start()):
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
