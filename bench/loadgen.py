"""The load generator of the P1 benchmark: prebuilt requests, a minimal HTTP/1.1 client, open-loop driving.

Open loop: request i is due at t0 + i/rate whatever happened to the earlier ones; a due request goes
out at once on an idle connection or waits in a FIFO for one, and its latency runs from its
*scheduled* time, so time spent waiting in the generator counts (no coordinated omission). All
requests — distinct messages with unique MsgIds, signed and encrypted, as raw HTTP/1.1 bytes — are
built before any timing; the client is a minimal keep-alive HTTP/1.1 protocol on asyncio (one request
in flight per connection, no pipelining, like a platform's connection pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

HOST = "127.0.0.1"  # the servers listen here and the generator connects here: loopback only
SENDERS = 50  # distinct WeCom user ids the messages come from


class Target(Protocol):
    """A server as the generator needs it: where to connect, and how much CPU it has used."""

    @property
    def port(self) -> int: ...

    def cpu_seconds(self) -> float | None: ...


# ---------------------------------------------------------------------------------------- requests


def build_requests(count: int) -> list[bytes]:
    """`count` complete HTTP/1.1 POSTs, each a new text message (unique MsgId), signed and encrypted.

    The same list is offered to every server: each server (with its own fresh database) sees each
    message at most once, so no request is ever a duplicate for the server that receives it.
    """
    from tests.conftest import AES_KEY, AGENT_ID, CORP_ID, TOKEN
    from tests.fakes.wire import WeComWire

    wire = WeComWire(TOKEN, AES_KEY, CORP_ID, AGENT_ID)
    requests: list[bytes] = []
    for n in range(count):
        inner = wire.text(f"rep{n % SENDERS:03d}", f"今天拜访了客户{n}号，聊了报价，约了下周二再跟进")
        signed = wire.envelope(inner, nonce=str(100_000_000 + n))
        head = (
            f"POST /wecom/callback?{signed.query} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Type: text/xml\r\nContent-Length: {len(signed.body)}\r\n\r\n"
        )
        requests.append(head.encode("ascii") + signed.body)
    return requests


# ---------------------------------------------------------------------------------- CPU accounting


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes on the machine have used (busy = not idle, not iowait), from /proc/stat."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------ open-loop load generator


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self, load: OpenLoad) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.slot = -1  # schedule index of the request in flight; -1 when idle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0:
                self.load.fail(self, "response without Content-Length")
                return
            stop = head.find(b"\r\n", at + 2)
            total = end + 4 + int(head[at + 17 : stop if stop >= 0 else None])
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            self.load.on_response(self, int(head[9:12]))

    def connection_lost(self, exc: Exception | None) -> None:
        self.load.on_lost(self)


@dataclass
class Tally:
    """What one open-loop phase produced, per request in completion order."""

    scheduled: int
    sent: int = 0
    unsent: int = 0  # still queued in the generator when the window closed (never written)
    done_at: list[float] = field(default_factory=list)  # loop time of each response
    latency: list[float] = field(default_factory=list)  # seconds from the scheduled time
    status: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    t0: float = 0.0
    cpu: dict[str, float | None] = field(default_factory=dict)  # samples at window start/end

    def cores_used(self, who: str) -> float | None:
        """Cores `who` (server, generator, machine) used between the start and end samples."""
        a, b = self.cpu.get(f"{who}_start"), self.cpu.get(f"{who}_end")
        wall = (self.cpu.get("wall_end") or 0.0) - (self.cpu.get("wall_start") or 0.0)
        return None if a is None or b is None or wall <= 0 else (b - a) / wall


class OpenLoad:
    """Open-loop driver: request i is due at t0 + i/rate, whatever happened to earlier requests.

    A due request goes out at once on an idle connection, else waits in a FIFO for the next one to
    free up; its latency runs from its scheduled time, so waiting in the generator counts.
    """

    def __init__(self, requests: Sequence[bytes], *, first: int, rate: float, duration: float,
                 connections: int, drop_backlog: bool) -> None:
        self.requests, self.rate, self.duration = requests, rate, duration
        self.connections, self.drop_backlog = connections, drop_backlog
        self.tally = Tally(scheduled=math.floor(rate * duration))
        self._loop = asyncio.get_running_loop()
        self._live: list[_Connection] = []
        self._idle: list[_Connection] = []
        self._pending: deque[int] = deque()
        self._next = first  # the next request never sent to this server
        self._closing = False
        self._drained: asyncio.Future[None] | None = None  # created when the window closes

    async def run(self, server: Target, samples: dict[str, float]) -> Tally:
        """Drive the server; `samples` maps a name to an offset from t0 at which CPU use is sampled."""
        loop, tally = self._loop, self.tally
        for _ in range(self.connections):
            _, conn = await loop.create_connection(lambda: _Connection(self), HOST, server.port)
            self._live.append(conn)
        self._idle = list(self._live)
        t0 = tally.t0 = loop.time() + 0.05
        for name, offset in samples.items():
            loop.call_at(t0 + offset, self._sample, server, name)
        due = 0
        while due < tally.scheduled:
            until = min(tally.scheduled, math.floor((loop.time() - t0) * self.rate) + 1)
            while due < until:
                self._submit(due)
                due += 1
            if due < tally.scheduled:
                await asyncio.sleep(t0 + due / self.rate - loop.time())
        await asyncio.sleep(t0 + self.duration - loop.time())
        if self.drop_backlog:
            tally.unsent = len(self._pending)
            self._pending.clear()
        if len(self._idle) < len(self._live):
            self._drained = loop.create_future()
            with contextlib.suppress(TimeoutError):  # then summarize() reports what went unanswered
                await asyncio.wait_for(self._drained, timeout=60)
        self._closing = True
        for conn in self._live:
            assert conn.transport is not None
            conn.transport.close()
        return tally

    def _sample(self, server: Target, name: str) -> None:
        self.tally.cpu[f"server_{name}"] = server.cpu_seconds()
        self.tally.cpu[f"machine_{name}"] = machine_busy_seconds()
        self.tally.cpu[f"generator_{name}"] = time.process_time()
        self.tally.cpu[f"wall_{name}"] = self._loop.time()

    def _submit(self, slot: int) -> None:
        if self._idle:
            self._send(self._idle.pop(), slot)
        else:
            self._pending.append(slot)

    def _send(self, conn: _Connection, slot: int) -> None:
        assert conn.transport is not None
        if self._next >= len(self.requests):  # never resend: each request is a new message
            self.tally.errors["ran out of prebuilt requests"] += 1
            self._idle.append(conn)
            self._check_drained()
            return
        conn.slot = slot
        conn.transport.write(self.requests[self._next])
        self._next += 1
        self.tally.sent += 1

    def on_response(self, conn: _Connection, status: int) -> None:
        now, tally = self._loop.time(), self.tally
        tally.done_at.append(now)
        tally.latency.append(now - (tally.t0 + conn.slot / self.rate))
        tally.status.append(status)
        if self._pending:
            self._send(conn, self._pending.popleft())
            return
        conn.slot = -1
        self._idle.append(conn)
        self._check_drained()

    def fail(self, conn: _Connection, reason: str) -> None:
        self.tally.errors[reason] += 1
        assert conn.transport is not None
        conn.transport.close()

    def on_lost(self, conn: _Connection) -> None:
        if self._closing:
            return
        self.tally.errors["connection lost"] += 1
        if conn.slot >= 0:
            self.tally.errors["request lost with its connection"] += 1
        if conn in self._live:
            self._live.remove(conn)
        if conn in self._idle:
            self._idle.remove(conn)
        self._check_drained()

    def _check_drained(self) -> None:
        """After the window: wake run() once every request sent has been answered (or lost)."""
        if self._drained is not None and not self._drained.done() and len(self._idle) == len(self._live):
            self._drained.set_result(None)


# --------------------------------------------------------------------------------- latency figures


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1)]


def latency_figures(sorted_seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds of sorted latencies in seconds (NaN when there are none)."""
    figures = {f"p{q}": percentile(sorted_seconds, q) * 1000 for q in (50, 90, 99)}
    figures["max"] = (sorted_seconds[-1] if sorted_seconds else math.nan) * 1000
    return figures
