"""What the intent parser gives back (bot/nlu/intents.py): the intents, the parsed message with its slots,
and the tokens it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from bot.nlu.customers import MatchResult


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
class Token:
    word: str
    start: int
    end: int
