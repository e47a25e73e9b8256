"""The outbox sender: delivers pending WeCom outbox rows through the API client.

One run (`run_once`) is three steps, so no database transaction is ever held across a network call:

1. Claim, in one short transaction: due, unleased `wecom` rows whose earlier rows for the same
   recipient are all claimable too (per-recipient order: a later row never overtakes an earlier
   pending one), trimmed by the per-recipient throttle counted from `sent_at` in the database (so it
   survives restarts and follows the clock). Claimed rows get `lease_until = now + lease_s`; rows over
   the throttle get `next_attempt_at` = when the window frees. On PostgreSQL claims are serialised by a
   transaction advisory lock and rows taken with FOR UPDATE SKIP LOCKED; on SQLite BEGIN IMMEDIATE
   serialises them.
2. Send, outside any transaction: one chain per recipient (rows in id order), chains in parallel up to
   `send_concurrency`. A chain stops at the first row that must wait (retry or pause).
3. Record each result in its own short transaction. A crash between 2 and 3 leaves the row leased;
   after the lease it is sent again with the byte-identical body, and WeCom's duplicate check
   (`enable_duplicate_check`) drops the copy: the member sees it once.

Error policy (WeCom docs, FACTS.md §6): 0 -> sent; 40014/42001 -> the client refreshes the token once
and resends; -1 (busy) and transport failures -> same body again after exponential backoff with full
jitter (-1 at most `busy_retries` times, transport failures up to `max_attempts` attempts), then dead;
45009/45033 (frequency limits) -> every send of this sender pauses for `rate_limit_pause_s`, the row
stays pending; anything else -> dead letter (logged, `salesbot_outbox_dead_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, case, exists, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.channels.wecom.api import ApiNetworkError, ApiResult, ApiTokenError, WeComClient
from bot.clock import Clock
from bot.config import Settings, WeComSettings
from bot.metrics import Labels, Metrics
from store.db import Database
from store.models import OutboxMessage

log = logging.getLogger(__name__)

CHANNEL = "wecom"
BUSY_ERRCODE = -1
RATE_LIMIT_ERRCODES = frozenset({45009, 45033})
# pg_advisory_xact_lock key ("salesbot outbox claim"): one claim at a time across processes. Without
# it, SKIP LOCKED would let a second sender claim row n+1 while row n of the same recipient is still
# being claimed by the first, and the two could then be delivered out of order.
CLAIM_LOCK_KEY = 0x5A1E5B07
_BUSY_MARK = re.compile(r"^\[busy (\d+)\] ")
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)

Action = Literal["sent", "retry", "dead", "pause"]


class InvalidRowError(ValueError):
    """An outbox row this sender cannot turn into a request (unknown kind, malformed payload)."""


@dataclass(frozen=True)
class Claimed:
    """A row leased to this sender for one run (plain values: no ORM object outlives its session)."""

    id: int
    recipient: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    last_errcode: int | None
    last_error: str | None
    lease_until: datetime


@dataclass(frozen=True)
class Outcome:
    """What one attempt means for its row."""

    action: Action
    errcode: int | None = None  # the platform's errcode; None for transport failures or bad rows
    label: str = "0"  # metrics label: errcode, "network" or "invalid"
    error: str | None = None
    msgid: str | None = None
    delay_s: float = 0.0  # retry: wait before the next attempt
    until: datetime | None = None  # pause: no sending before this
    counts_attempt: bool = True  # a pause for a frequency limit or a token failure is not the row's fault


def build_request(
    kind: str, recipient: str, payload: dict[str, Any], wecom: WeComSettings
) -> tuple[str, dict[str, Any]]:
    """The endpoint ("send" or "update_card") and body for one row: a pure function of the row and the
    settings, so every attempt of a row sends the same bytes (the client encodes canonically)."""
    if kind == "update_card":
        code = payload.get("response_code")
        userids = payload.get("userids") or [recipient]
        if not isinstance(code, str) or not code:
            raise InvalidRowError("update_card without response_code")
        body: dict[str, Any] = {
            "userids": list(userids),
            "agentid": wecom.agent_id,
            "response_code": code,
        }
        if isinstance(payload.get("template_card"), dict):
            body["template_card"] = payload["template_card"]
        else:
            button = payload.get("button")
            body["button"] = button if isinstance(button, dict) else {"replace_name": ""}
        return "update_card", body
    if kind in {"text", "markdown"}:
        content = payload.get("content")
        if not isinstance(content, str) or not content:
            raise InvalidRowError(f"{kind} without content")
        inner: dict[str, Any] = {"content": content}
    elif kind == "template_card":
        card = payload.get("template_card")
        if not isinstance(card, dict):
            raise InvalidRowError("template_card without a card")
        inner = card
    else:
        raise InvalidRowError(f"unknown kind {kind!r}")
    return "send", {
        "touser": recipient,
        "msgtype": kind,
        "agentid": wecom.agent_id,
        kind: inner,
        # A resend after a crash or a lost answer is then dropped by WeCom, not shown twice.
        "enable_duplicate_check": 1,
        "duplicate_check_interval": wecom.duplicate_check_interval_s,
    }


class OutboxSender:
    """Delivers `wecom` outbox rows. One per process; several processes may share one database."""

    def __init__(
        self,
        db: Database,
        client: WeComClient,
        settings: Settings,
        clock: Clock,
        metrics: Metrics,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._client = client
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._rng = rng or random.Random()  # jitter, not security
        self._pause_until: datetime | None = None
        self._is_pg = db.engine.dialect.name == "postgresql"

    @property
    def paused_until(self) -> datetime | None:
        """Set by a 45009/45033 (or a failed gettoken): nothing is sent before it."""
        return self._pause_until

    # ------------------------------------------------------------------ the loop

    async def run_forever(self, wakeup: asyncio.Event) -> None:
        """Run until cancelled: after each run wait for `wakeup` (set when rows are enqueued) or
        `poll_interval_s`. A failing run is logged and the loop goes on."""
        outbox = self._settings.outbox
        while True:
            wakeup.clear()  # before the run, so rows enqueued during it wake the next one
            try:
                attempted = await self.run_once()
            except Exception:
                log.exception("outbox sender: run failed; trying again after the poll interval")
                attempted = 0
            if attempted >= outbox.batch_size:
                continue  # a full batch: there is probably more waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=outbox.poll_interval_s)

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim, send and record one batch; returns the number of rows attempted."""
        stamp: Callable[[], datetime] = self._clock.now if now is None else (lambda: now)
        start = stamp()
        if self._paused(start):
            return 0
        claimed = await self._claim(start)
        if not claimed:
            return 0
        chains: dict[str, list[Claimed]] = {}
        for row in claimed:
            chains.setdefault(row.recipient, []).append(row)
        gate = asyncio.Semaphore(self._settings.outbox.send_concurrency)
        counts = await asyncio.gather(*(self._run_chain(rows, gate, stamp) for rows in chains.values()))
        return sum(counts)

    def _paused(self, now: datetime) -> bool:
        return self._pause_until is not None and now < self._pause_until

    async def _run_chain(
        self, rows: Sequence[Claimed], gate: asyncio.Semaphore, stamp: Callable[[], datetime]
    ) -> int:
        """Send one recipient's rows in order; stop at the first that has to wait."""
        attempted = 0
        async with gate:
            for index, row in enumerate(rows):
                try:
                    if self._paused(stamp()):
                        await self._release(rows[index:], until=self._pause_until)
                        return attempted
                    outcome = await self._attempt(row, stamp)
                    attempted += 1
                    await self._record(row, outcome, stamp())
                    if outcome.action in {"retry", "pause"}:
                        until = self._pause_until if outcome.action == "pause" else None
                        await self._release(rows[index + 1 :], until=until)
                        return attempted
                except Exception:
                    # Typically the database failing while recording. The rows keep their lease; after
                    # it they are claimed again and the same request is resent (duplicate check).
                    log.exception("outbox %s: attempt or record failed; retried after the lease", row.id)
                    return attempted
        return attempted

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, row: Claimed, stamp: Callable[[], datetime]) -> Outcome:
        outbox = self._settings.outbox
        try:
            endpoint, body = build_request(row.kind, row.recipient, row.payload, self._settings.wecom)
        except InvalidRowError as exc:
            return Outcome("dead", label="invalid", error=str(exc))
        try:
            if endpoint == "update_card":
                result = await self._client.update_template_card(body)
            else:
                result = await self._client.send_message(body)
        except ApiTokenError as exc:
            # No token, no call: not this row's fault. Pause everything (a wrong secret would fail
            # every row the same way) and try again later without spending the row's attempts.
            until = stamp() + timedelta(seconds=outbox.rate_limit_pause_s)
            self._pause(until, f"gettoken errcode {exc.result.errcode}")
            return Outcome(
                "pause", errcode=exc.result.errcode, label=f"gettoken_{exc.result.errcode}",
                error=exc.result.errmsg, until=until, counts_attempt=False,
            )  # fmt: skip
        except ApiNetworkError as exc:
            self._count_send(row.kind, "network")
            attempt = row.attempts + 1
            if attempt >= outbox.max_attempts:
                return Outcome("dead", label="network", error=f"network: {exc.reason}")
            return Outcome(
                "retry", label="network", error=f"network: {exc.reason}", delay_s=self._backoff(attempt)
            )
        self._count_send(row.kind, str(result.errcode))
        return self._classify(row, result, stamp)

    def _classify(self, row: Claimed, result: ApiResult, stamp: Callable[[], datetime]) -> Outcome:
        outbox = self._settings.outbox
        code, label = result.errcode, str(result.errcode)
        if result.ok:
            msgid = result.data.get("msgid")
            return Outcome("sent", errcode=0, msgid=str(msgid) if msgid else None)
        if code == BUSY_ERRCODE:
            busy = _busy_count(row) + 1
            if busy > outbox.busy_retries:
                return Outcome("dead", errcode=code, label=label, error=result.errmsg)
            return Outcome(
                "retry", errcode=code, label=label, error=f"[busy {busy}] {result.errmsg}",
                delay_s=self._backoff(row.attempts + 1),
            )  # fmt: skip
        if code in RATE_LIMIT_ERRCODES:
            until = stamp() + timedelta(seconds=outbox.rate_limit_pause_s)
            self._pause(until, f"errcode {code}")
            return Outcome(
                "pause", errcode=code, label=label, error=result.errmsg, until=until, counts_attempt=False
            )
        return Outcome("dead", errcode=code, label=label, error=result.errmsg)

    def _pause(self, until: datetime, why: str) -> None:
        if self._pause_until is None or until > self._pause_until:
            self._pause_until = until
            log.warning("outbox sender: %s, pausing all sends until %s", why, until.isoformat())

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [0, min(max, base * 2^(attempt-1))]."""
        outbox = self._settings.outbox
        cap = min(outbox.backoff_max_s, outbox.backoff_base_s * 2 ** max(attempt - 1, 0))
        return self._rng.uniform(0, cap)

    def _count_send(self, kind: str, errcode: str) -> None:
        self._metrics.inc("salesbot_outbox_sends_total", channel=CHANNEL, kind=kind, errcode=errcode)

    # ------------------------------------------------------------------ database

    async def _claim(self, now: datetime) -> list[Claimed]:
        outbox = self._settings.outbox
        o, earlier = OutboxMessage, aliased(OutboxMessage)
        blocked = exists().where(
            earlier.channel == o.channel,
            earlier.recipient == o.recipient,
            earlier.status == "pending",
            earlier.id < o.id,
            or_(
                earlier.next_attempt_at > now,
                and_(earlier.lease_until.is_not(None), earlier.lease_until >= now),
            ),
        )
        stmt = (
            select(o.id, o.recipient, o.kind, o.payload, o.attempts, o.last_errcode, o.last_error)
            .where(
                o.channel == CHANNEL,
                o.status == "pending",
                o.next_attempt_at <= now,
                or_(o.lease_until.is_(None), o.lease_until < now),
                ~blocked,
            )
            .order_by(o.id)
            .limit(outbox.batch_size)
        )
        if self._is_pg:
            stmt = stmt.with_for_update(skip_locked=True, of=OutboxMessage.__table__)
        lease = now + timedelta(seconds=outbox.lease_s)
        async with self._db.transaction() as session:
            if self._is_pg:
                await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK_KEY})
            rows = (await session.execute(stmt)).all()
            if not rows:
                return []
            by_recipient: dict[str, list[Any]] = {}
            for r in rows:
                by_recipient.setdefault(r.recipient, []).append(r)
            windows = await self._window_counts(session, list(by_recipient), now)
            take: list[Any] = []
            deferred: dict[datetime, list[int]] = {}
            for recipient, candidates in by_recipient.items():
                minute, hour = windows.get(recipient, (0, 0))
                room = max(
                    0, min(outbox.per_recipient_per_minute - minute, outbox.per_recipient_per_hour - hour)
                )
                take += candidates[:room]
                if len(candidates) > room:
                    free_at = await self._free_at(session, recipient, now, minute, hour, room)
                    deferred.setdefault(free_at, []).extend(r.id for r in candidates[room:])
            if take:
                await session.execute(
                    update(o).where(o.id.in_([r.id for r in take])).values(lease_until=lease),
                    execution_options={"synchronize_session": False},
                )
            for free_at, ids in deferred.items():
                await session.execute(
                    update(o).where(o.id.in_(ids)).values(next_attempt_at=free_at),
                    execution_options={"synchronize_session": False},
                )
        return [
            Claimed(
                r.id, r.recipient, r.kind, dict(r.payload), r.attempts, r.last_errcode, r.last_error, lease
            )
            for r in take
        ]

    async def _window_counts(
        self, session: AsyncSession, recipients: list[str], now: datetime
    ) -> dict[str, tuple[int, int]]:
        """Per recipient: rows sent in the last minute and in the last hour (windows (now-d, now])."""
        o = OutboxMessage
        stmt = (
            select(o.recipient, func.sum(case((o.sent_at > now - MINUTE, 1), else_=0)), func.count())
            .where(
                o.channel == CHANNEL, o.status == "sent", o.recipient.in_(recipients), o.sent_at > now - HOUR
            )
            .group_by(o.recipient)
        )
        return {r: (int(m or 0), int(h)) for r, m, h in (await session.execute(stmt)).all()}

    async def _free_at(
        self, session: AsyncSession, recipient: str, now: datetime, minute: int, hour: int, taking: int
    ) -> datetime:
        """When the next row for `recipient` may go, given the rows sent in each window plus `taking`
        rows about to be sent now. With n sends in a window of length d and limit L, the next may go at
        the (n-L)-th oldest (0-based) + d."""
        outbox = self._settings.outbox
        free = now
        windows = (
            (minute, outbox.per_recipient_per_minute, MINUTE),
            (hour, outbox.per_recipient_per_hour, HOUR),
        )
        for count, limit, span in windows:
            n = count + taking
            if n < limit:
                continue
            k = n - limit
            if k < count:
                o = OutboxMessage
                oldest = await session.scalar(
                    select(o.sent_at)
                    .where(
                        o.channel == CHANNEL,
                        o.status == "sent",
                        o.recipient == recipient,
                        o.sent_at > now - span,
                    )
                    .order_by(o.sent_at)
                    .offset(k)
                    .limit(1)
                )
                at = oldest if oldest is not None else now
            else:
                at = now  # one of the rows being sent now
            free = max(free, at + span)
        return free

    async def _record(self, row: Claimed, outcome: Outcome, now: datetime) -> None:
        o = OutboxMessage
        attempts = row.attempts + (1 if outcome.counts_attempt else 0)
        if outcome.action == "sent":
            # Recorded even if the lease was lost: the platform took it, whoever else tries again.
            where = [o.id == row.id, o.status == "pending"]
            values: dict[str, Any] = {
                "status": "sent", "sent_at": now, "platform_msgid": outcome.msgid, "attempts": attempts,
                "lease_until": None, "last_errcode": 0, "last_error": None,
            }  # fmt: skip
        else:
            where = [o.id == row.id, o.status == "pending", o.lease_until == row.lease_until]
            values = {
                "attempts": attempts,
                "lease_until": None,
                "last_errcode": outcome.errcode,
                "last_error": outcome.error,
            }
            if outcome.action == "dead":
                values["status"] = "dead"
            elif outcome.action == "retry":
                values["next_attempt_at"] = now + timedelta(seconds=outcome.delay_s)
            else:
                values["next_attempt_at"] = outcome.until
        async with self._db.transaction() as session:
            result = await session.execute(
                update(o).where(*where).values(**values), execution_options={"synchronize_session": False}
            )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            log.warning(
                "outbox %s: lease lost before recording %s; left to its new holder", row.id, outcome.action
            )
            return
        if outcome.action == "dead":
            self._metrics.inc("salesbot_outbox_dead_total", channel=CHANNEL, errcode=outcome.label)
            log.warning(
                "outbox %s to %s (%s) is dead after %s attempts: errcode=%s %s",
                row.id, row.recipient, row.kind, attempts, outcome.label, outcome.error,
            )  # fmt: skip
        elif outcome.action == "retry":
            log.info("outbox %s: %s, retry in %.1fs", row.id, outcome.error, outcome.delay_s)

    async def _release(self, rows: Sequence[Claimed], *, until: datetime | None) -> None:
        """Give back rows this run will not send (their lease), optionally not before `until`."""
        if not rows:
            return
        o = OutboxMessage
        values: dict[str, Any] = {"lease_until": None}
        if until is not None:
            values["next_attempt_at"] = until
        async with self._db.transaction() as session:
            await session.execute(
                update(o)
                .where(
                    o.id.in_([r.id for r in rows]),
                    o.status == "pending",
                    o.lease_until == rows[0].lease_until,
                )
                .values(**values),
                execution_options={"synchronize_session": False},
            )


def _busy_count(row: Claimed) -> int:
    """How many -1 answers in a row this row already had (kept in last_error as "[busy n] ...")."""
    if row.last_errcode != BUSY_ERRCODE or not row.last_error:
        return 0
    match = _BUSY_MARK.match(row.last_error)
    return int(match.group(1)) if match else 0


def register_outbox_gauges(metrics: Metrics, db: Database, clock: Clock) -> None:
    """`salesbot_outbox_backlog` (rows not yet delivered) and `salesbot_outbox_oldest_age_seconds`,
    read from the database when /metrics is scraped."""
    pending = OutboxMessage.status == "pending"

    async def backlog() -> dict[Labels, float]:
        async with db.sessions() as session:
            count = await session.scalar(select(func.count()).select_from(OutboxMessage).where(pending))
        return {(): float(count or 0)}

    async def oldest_age() -> dict[Labels, float]:
        async with db.sessions() as session:
            oldest = await session.scalar(select(func.min(OutboxMessage.created_at)).where(pending))
        age = (clock.now() - oldest).total_seconds() if oldest is not None else 0.0
        return {(): max(age, 0.0)}

    metrics.gauge("salesbot_outbox_backlog", backlog)
    metrics.gauge("salesbot_outbox_oldest_age_seconds", oldest_age)
