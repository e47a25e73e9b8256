"""What one attempt means for its row: pure functions of the row, the answer and the settings (the
randomness of the backoff jitter comes from the caller's `random.Random`).

Error policy (WeCom docs, FACTS.md §6): 0 -> sent; 40014/42001 -> the client refreshes the token once
and resends (never seen here); -1 (busy) and transport failures -> the same body again after exponential
backoff with full jitter (-1 at most `[outbox] busy_retries` times in a row's life, transport failures
until `max_attempts` attempts), then dead; 45009/45033 (frequency limits) and a failed gettoken -> every
send of the sender pauses for `rate_limit_pause_s`, the row stays pending without spending an attempt;
anything else -> dead letter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.channels.wecom.api import ApiNetworkError, ApiResult, ApiTokenError
from bot.config import OutboxSettings

BUSY_ERRCODE = -1
RATE_LIMIT_ERRCODES = frozenset({45009, 45033})
# Longest value stored in platform_msgid / response_code (String(128)); WeCom's are far shorter.
MAX_ID_CHARS = 128

Action = Literal["sent", "retry", "dead", "pause"]


@dataclass(frozen=True)
class Claimed:
    """A row leased to this sender for one run (plain values: no ORM object outlives its session)."""

    id: int
    recipient: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    busy_retries: int
    duplicate_check_interval_s: int | None
    lease_until: datetime


@dataclass(frozen=True)
class Outcome:
    """What one attempt means for its row."""

    action: Action
    errcode: int | None = None  # the platform's errcode; None for transport failures or bad rows
    label: str = "0"  # metrics label: errcode, "network", "invalid" or "gettoken_<errcode>"
    error: str | None = None
    msgid: str | None = None
    response_code: str | None = None  # sent: an interactive template card's code for update_card
    busy_retries: int | None = None  # the row's new count of -1 answers (None: unchanged)
    delay_s: float = 0.0  # retry: wait before the next attempt
    until: datetime | None = None  # pause: no sending before this
    counts_attempt: bool = True  # a pause for a frequency limit or a token failure is not the row's fault


def backoff_s(attempt: int, outbox: OutboxSettings, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempt-1))]."""
    cap = min(outbox.backoff_max_s, outbox.backoff_base_s * 2 ** max(attempt - 1, 0))
    return rng.uniform(0, cap)


def on_answer(
    row: Claimed, result: ApiResult, outbox: OutboxSettings, now: datetime, rng: random.Random
) -> Outcome:
    """The platform answered with JSON (errcode 0 or not)."""
    code, label = result.errcode, str(result.errcode)
    if result.ok:
        return Outcome(
            "sent",
            errcode=0,
            msgid=_short_id(result.data.get("msgid")),
            response_code=_short_id(result.data.get("response_code")),
        )
    if code == BUSY_ERRCODE:
        busy = row.busy_retries + 1
        if busy > outbox.busy_retries:
            return Outcome("dead", errcode=code, label=label, error=result.errmsg, busy_retries=busy)
        return Outcome(
            "retry", errcode=code, label=label, error=result.errmsg, busy_retries=busy,
            delay_s=backoff_s(row.attempts + 1, outbox, rng),
        )  # fmt: skip
    if code in RATE_LIMIT_ERRCODES:
        return _pause(code, label, result.errmsg, outbox, now)
    return Outcome("dead", errcode=code, label=label, error=result.errmsg)


def on_network_error(row: Claimed, exc: ApiNetworkError, outbox: OutboxSettings, rng: random.Random) -> Outcome:
    """No usable answer: the request may or may not have arrived; the same body is resent."""
    attempt = row.attempts + 1
    error = f"network: {exc.reason}"
    if attempt >= outbox.max_attempts:
        return Outcome("dead", label="network", error=error)
    return Outcome("retry", label="network", error=error, delay_s=backoff_s(attempt, outbox, rng))


def on_token_error(exc: ApiTokenError, outbox: OutboxSettings, now: datetime) -> Outcome:
    """No token, no call: not this row's fault. Everything pauses (a wrong secret would fail every row
    the same way) and the row is tried again later without spending an attempt."""
    code = exc.result.errcode
    return _pause(code, f"gettoken_{code}", exc.result.errmsg, outbox, now)


def on_invalid_row(reason: str) -> Outcome:
    """The row cannot become a request: dead without a call."""
    return Outcome("dead", label="invalid", error=reason)


def _pause(code: int, label: str, error: str, outbox: OutboxSettings, now: datetime) -> Outcome:
    until = now + timedelta(seconds=outbox.rate_limit_pause_s)
    return Outcome(
        "pause", errcode=code, label=label, error=error, until=until, counts_attempt=False
    )


def _short_id(value: object) -> str | None:
    """An id from the answer as stored: a non-empty string that fits its column, else None (an
    oversized value must not make recording fail, which would resend the row after every lease)."""
    if value is None or value == "":
        return None
    text = str(value)
    return text if len(text) <= MAX_ID_CHARS else None
