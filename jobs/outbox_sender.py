"""The outbox sender: delivers pending WeCom outbox rows through the API client.

One run (`run_once`) is three steps, so no database transaction is ever held across a network call:

1. Claim, in one short transaction (jobs/outbox/rows.py): due, unleased rows in per-recipient order,
   trimmed by the per-recipient throttle, leased for `lease_s`.
2. Send, outside any transaction: one chain per recipient (rows in id order), chains in parallel up to
   `send_concurrency`. A chain stops at the first row that must wait (retry or pause). The request is
   built by jobs/outbox/request.py; what the answer means is decided by jobs/outbox/policy.py.
3. Record each result in its own short transaction. A crash between 2 and 3 leaves the row leased;
   after the lease it is sent again with the byte-identical body, and WeCom's duplicate check
   (`enable_duplicate_check`) drops the copy: the member sees it once. Two different rows with the same
   content carry different `duplicate_check_interval` values, so neither is taken for the other's copy.

Dead letters are logged and counted (`salesbot_outbox_dead_total`); every call is counted by kind and
errcode (`salesbot_outbox_sends_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime

from bot.channels.wecom.api import ApiNetworkError, ApiTokenError, WeComClient
from bot.clock import Clock
from bot.config import Settings
from bot.metrics import Metrics
from jobs.outbox import policy
from jobs.outbox.policy import Claimed, Outcome
from jobs.outbox.request import InvalidRowError, build_request
from jobs.outbox.rows import CHANNEL, OutboxRows, register_outbox_gauges
from store.db import Database

__all__ = ["Claimed", "InvalidRowError", "OutboxSender", "Outcome", "build_request", "register_outbox_gauges"]

log = logging.getLogger(__name__)


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
        self._rows = OutboxRows(db, settings)
        self._client = client
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._rng = rng or random.Random()  # jitter, not security
        self._pause_until: datetime | None = None

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
            endpoint, body = build_request(
                row.kind, row.recipient, row.payload, self._settings.wecom,
                duplicate_check_interval=row.duplicate_check_interval_s,
            )  # fmt: skip
        except InvalidRowError as exc:
            return policy.on_invalid_row(str(exc))
        try:
            if endpoint == "update_card":
                result = await self._client.update_template_card(body)
            else:
                result = await self._client.send_message(body)
        except ApiTokenError as exc:
            outcome = policy.on_token_error(exc, outbox, stamp())
        except ApiNetworkError as exc:
            self._count_send(row.kind, "network")
            outcome = policy.on_network_error(row, exc, outbox, self._rng)
        else:
            self._count_send(row.kind, str(result.errcode))
            outcome = policy.on_answer(row, result, outbox, stamp(), self._rng)
        if outcome.action == "pause" and outcome.until is not None:
            self._pause(outcome.until, f"{outcome.label} ({outcome.error})")
        return outcome

    def _pause(self, until: datetime, why: str) -> None:
        if self._pause_until is None or until > self._pause_until:
            self._pause_until = until
            log.warning("outbox sender: %s, pausing all sends until %s", why, until.isoformat())

    def _count_send(self, kind: str, errcode: str) -> None:
        self._metrics.inc("salesbot_outbox_sends_total", channel=CHANNEL, kind=kind, errcode=errcode)

    # ------------------------------------------------------------------ database

    async def _claim(self, now: datetime) -> list[Claimed]:
        return await self._rows.claim(now)

    async def _record(self, row: Claimed, outcome: Outcome, now: datetime) -> None:
        if not await self._rows.record(row, outcome, now):
            log.warning(
                "outbox %s: lease lost before recording %s; left to its new holder", row.id, outcome.action
            )
            return
        if outcome.action == "dead":
            self._metrics.inc("salesbot_outbox_dead_total", channel=CHANNEL, errcode=outcome.label)
            attempts = row.attempts + (1 if outcome.counts_attempt else 0)
            log.warning(
                "outbox %s to %s (%s) is dead after %s attempts: errcode=%s %s",
                row.id, row.recipient, row.kind, attempts, outcome.label, outcome.error,
            )  # fmt: skip
        elif outcome.action == "retry":
            log.info(
                "outbox %s: errcode=%s %s, retry in %.1fs", row.id, outcome.label, outcome.error, outcome.delay_s
            )

    async def _release(self, rows: Sequence[Claimed], *, until: datetime | None) -> None:
        await self._rows.release(rows, until=until)
