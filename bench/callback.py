"""P1 benchmark: the durable WeCom callback path against a bare verify+decrypt handler.

Measured (see bench/README.md for the figures):
1. Throughput, in one run and with the same load generator: completed 200s per second of
   - `bare`: an aiohttp handler that screens and parses the envelope, verifies the signature,
     decrypts, parses the inner message and answers 200 (nothing stored);
   - `full`: the real app (`create_app`) — the same steps, then the inbox commit (group commit,
     SQLite WAL + synchronous=FULL) before the 200.
   Both are offered far more than they can answer; bare and full alternate a few times and the
   ratio full / bare (median over the rounds) is the figure of merit (target >= 0.5).
2. Ack latency of `full` at a steady 200 msg/s: p50/p90/p99/max (target p99 <= 50 ms).
3. Correctness: after each full server stops, inbox rows == 200s answered (no lost or duplicate rows).

How: each server runs in its own subprocess (own interpreter, own event loop), on 127.0.0.1 and a
port the OS picks. This process is an open-loop load generator: request i is due at t0 + i/rate
whatever happened to the earlier ones, waits in a queue while all connections are busy, and its
latency is measured from its *scheduled* time (no coordinated omission). All requests — distinct
messages with unique MsgIds, signed and encrypted, as raw HTTP/1.1 bytes — are built before any
timing; the client is a minimal keep-alive HTTP/1.1 protocol on asyncio (one request in flight per
connection, no pipelining, like a platform's connection pool).

Run:  python -m bench.callback            # full run, about 80 s
      python -m bench.callback --short    # CI form, about 18 s
      python -m bench.callback --strict   # exit 1 when a target is missed
      python -m bench.callback --json out.json
Exit status: 1 when something is broken (a non-200, a lost connection, unanswered requests, lost or
duplicate inbox rows, a server that fails); missed performance targets only with --strict.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
QUIET = 0.25  # other processes may use this much of a core before a phase counts as disturbed
SENDERS = 50  # distinct WeCom user ids the messages come from
KINDS = ("null", "bare", "full", "full-processing")


class BenchError(RuntimeError):
    """Something is broken (not merely slow): the run cannot be trusted."""


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


# ------------------------------------------------------------------------------ servers (subprocess)


def bare_app() -> web.Application:
    """Verify + decrypt + parse + 200, nothing stored: the ceiling the full path is compared with.

    It does every step `WeComCallback.receive` does before the inbox commit (query parse, size cap,
    DTD screen, envelope parse, constant-time signature, decrypt with padding/receiveid checks,
    inner parse and mapping to IncomingMessage), so the ratio isolates the durable commit.
    """
    from bot.channels.wecom.callback import parse_query
    from bot.channels.wecom.crypto import CryptoError, SignatureError, WeComCrypto
    from bot.channels.wecom.parser import XmlError, parse_flat, reject_declarations, to_incoming
    from tests.conftest import AES_KEY, CORP_ID, TOKEN

    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    max_body = 65536

    async def receive(request: web.Request) -> web.Response:
        query = parse_query(request.rel_url.raw_query_string)  # read as WeComCallback reads it
        parts: list[bytes] = []
        async for chunk in request.content.iter_chunked(16384):
            parts.append(chunk)
            if sum(map(len, parts)) > max_body:
                return web.Response(status=413, text="body too large")
        body = b"".join(parts)
        try:
            reject_declarations(body)
            encrypted = parse_flat(body).get("Encrypt", "")
            crypto.verify(query.get("msg_signature", ""), query.get("timestamp", ""),
                          query.get("nonce", ""), encrypted)
            to_incoming(parse_flat(crypto.decrypt(encrypted)))
        except SignatureError:
            return web.Response(status=403, text="bad signature")
        except (CryptoError, XmlError) as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(status=200, text="")

    app = web.Application()
    app.router.add_post("/wecom/callback", receive)
    return app


def null_app() -> web.Application:
    """Answers 200 at once: calibrates what aiohttp plus this load generator can do at all."""

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200, text="")

    app = web.Application()
    app.router.add_post("/wecom/callback", receive)
    return app


def _ignore_stored(*_stored: Any) -> None:
    """Stands in for Deps.process_later (whatever its arguments) when stored rows are not processed."""


def full_app(db_path: Path, *, processing: bool) -> web.Application:
    """The real app on a fresh SQLite file (WAL + synchronous=FULL, asserted by the app at start-up).

    Without `processing`, stored rows are left pending: `Deps.process_later` is replaced by a no-op
    on the instance before create_app hands it to WeComCallback as `on_stored` (create_app captures
    the bound method at construction, so it must be replaced inside build_deps; this subprocess is
    the only user of the patched module). The sender loop, the scheduler and start-up recovery are off.
    """
    import bot.app
    from tests.conftest import make_settings

    settings = make_settings(f"sqlite+aiosqlite:///{db_path}")
    if not processing:
        build_deps = bot.app.build_deps

        def build_deps_without_processing(*args: Any, **kwargs: Any) -> Any:
            deps = build_deps(*args, **kwargs)
            deps.process_later = _ignore_stored  # type: ignore[method-assign]
            return deps

        bot.app.build_deps = build_deps_without_processing  # type: ignore[assignment]
    return bot.app.create_app(settings, run_sender=False, run_scheduler=False, recover_on_start=False)


async def serve(kind: str, db_path: Path | None) -> None:
    """Run one server: print `PORT n`, serve until stdin closes, print `STATS {json}` and exit."""
    if kind == "null":
        app = null_app()
    elif kind == "bare":
        app = bare_app()
    else:
        assert db_path is not None, "--db is required for the full server"
        app = full_app(db_path, processing=kind == "full-processing")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)  # port 0: the OS picks a free port
    await site.start()
    print(f"PORT {runner.addresses[0][1]}", flush=True)
    # The parent stops us by closing our stdin: a blocking read in a thread returns at EOF.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    await runner.cleanup()
    stats: dict[str, Any] = {}
    if kind.startswith("full"):
        from bot.deps import DEPS

        inbox = app[DEPS].inbox
        assert inbox is not None
        stats = {"commits": inbox.batches, "rows": inbox.rows}
    print("STATS " + json.dumps(stats), flush=True)


@dataclass
class Server:
    """A server subprocess as the parent sees it."""

    kind: str
    pid: int
    port: int
    stats: dict[str, Any] = field(default_factory=dict)  # what the server printed when it stopped
    cursor: int = 0  # requests[:cursor] have been sent to this server: it never gets one twice

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the whole server process (all threads), from /proc; None elsewhere."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """CPU seconds all processes on the machine have used (busy = not idle, not iowait), from /proc/stat."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


@asynccontextmanager
async def running_server(kind: str, log_path: Path, db_path: Path | None = None) -> AsyncIterator[Server]:
    """Start `python -m bench.callback --serve KIND` (stderr to `log_path`) and stop it cleanly on exit."""
    args = [sys.executable, "-m", "bench.callback", "--serve", kind]
    if db_path is not None:
        args += ["--db", str(db_path)]
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log
        )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = b"-"
        while line and not line.startswith(b"PORT "):  # skip anything else the app may print
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        if not line:
            raise BenchError(f"{kind} server did not start")
        server = Server(kind, proc.pid, int(line.split()[1]))
        yield server
    finally:
        proc.stdin.close()
        try:
            out = await asyncio.wait_for(proc.stdout.read(), timeout=60)
            code = await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise BenchError(f"{kind} server did not stop") from None
    if code != 0:
        raise BenchError(f"{kind} server exited with status {code}")
    for raw in out.splitlines():
        if raw.startswith(b"STATS "):
            server.stats = json.loads(raw[6:])


# --------------------------------------------------------------------------- open-loop load generator


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

    async def run(self, server: Server, samples: dict[str, float]) -> Tally:
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

    def _sample(self, server: Server, name: str) -> None:
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


# ------------------------------------------------------------------------------------------ phases


@dataclass
class Phase:
    """The figures of one phase, as printed and written to --json."""

    server: str
    kind: str  # throughput | latency
    offered_per_s: float
    duration_s: float
    connections: int
    scheduled: int
    sent: int
    unsent: int
    ok: int
    errors: dict[str, int]
    ok_per_s: float  # 200s completed inside the measured window, per second
    latency_ms: dict[str, float]
    server_cpu: float | None  # cores used by the server process inside the window
    generator_cpu: float  # cores used by this process (the load generator)
    other_cpu: float | None  # cores used by everything else on the machine (other work disturbs figures)
    commits: int | None = None  # group commits made by the inbox writer (full servers)
    rows_per_commit: float | None = None


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1)]


def summarize(load: OpenLoad, server: Server, kind: str, warmup: float) -> Phase:
    """Turn a tally into figures: throughput inside [t0 + warmup, t0 + duration], latency of all 200s."""
    tally = load.tally
    start, end = tally.t0 + warmup, tally.t0 + load.duration
    ok_in_window = sum(1 for at, st in zip(tally.done_at, tally.status, strict=True)
                       if st == 200 and start <= at <= end)
    errors = dict(tally.errors)
    if tally.sent > len(tally.status) + tally.errors["request lost with its connection"]:
        errors["sent but never answered"] = tally.sent - len(tally.status)
    for status, count in Counter(tally.status).items():
        if status != 200:
            errors[f"HTTP {status}"] = count
    # Under overload the generator's backlog grows without bound: latency means nothing there.
    ok_latency = [] if kind == "throughput" else sorted(
        lat for lat, st in zip(tally.latency, tally.status, strict=True) if st == 200)
    latency_ms = {f"p{q}": _percentile(ok_latency, q) * 1000 for q in (50, 90, 99)}
    latency_ms["max"] = (ok_latency[-1] if ok_latency else math.nan) * 1000

    def used(who: str) -> float | None:
        a, b = tally.cpu.get(f"{who}_start"), tally.cpu.get(f"{who}_end")
        wall = (tally.cpu.get("wall_end") or 0.0) - (tally.cpu.get("wall_start") or 0.0)
        return None if a is None or b is None or wall <= 0 else (b - a) / wall

    server_cpu, generator_cpu, machine_cpu = used("server"), used("generator"), used("machine")
    other = None
    if server_cpu is not None and generator_cpu is not None and machine_cpu is not None:
        other = max(0.0, machine_cpu - server_cpu - generator_cpu)
    return Phase(
        server=server.kind, kind=kind, offered_per_s=load.rate, duration_s=load.duration,
        connections=load.connections, scheduled=tally.scheduled, sent=tally.sent, unsent=tally.unsent,
        ok=tally.status.count(200), errors=errors, ok_per_s=ok_in_window / (end - start),
        latency_ms=latency_ms, server_cpu=server_cpu, generator_cpu=generator_cpu or 0.0, other_cpu=other,
    )


def inbox_counts(db_path: Path) -> dict[str, Any]:
    """Rows in the inbox table of a stopped server's database."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT dedup_key) FROM inbox").fetchone()
        statuses = dict(conn.execute("SELECT status, count(*) FROM inbox GROUP BY status").fetchall())
    return {"rows": rows, "distinct": distinct, "statuses": statuses}


@dataclass(frozen=True)
class Plan:
    """How long and how hard each phase runs."""

    throughput_rate: float  # offered in the throughput phases: well above any server's capacity
    throughput_s: float
    warmup_s: float  # the start of a throughput window that is not counted
    rounds: int  # bare and full throughput phases alternate this many times (ratio: median of rounds)
    latency_rate: float
    latency_s: float
    processing_latency_s: float
    connections: int  # client connections in the throughput phases (the server's concurrency)
    latency_connections: int
    calibrate: bool  # measure the `null` server first: what aiohttp + this generator can do at all
    processing_variant: bool  # also measure the full app with stored rows processed

    def requests_needed(self) -> int:
        """Enough distinct requests for the server that is offered the most."""
        per_throughput = math.floor(self.throughput_rate * self.throughput_s)
        return max(self.rounds * per_throughput, math.floor(self.latency_rate * self.latency_s))


SHORT = Plan(throughput_rate=12000, throughput_s=2, warmup_s=0.5, rounds=2, latency_rate=200, latency_s=5,
             processing_latency_s=0, connections=64, latency_connections=32, calibrate=False,
             processing_variant=False)
FULL = Plan(throughput_rate=12000, throughput_s=4, warmup_s=1, rounds=3, latency_rate=200, latency_s=20,
            processing_latency_s=10, connections=64, latency_connections=32, calibrate=True,
            processing_variant=True)


@dataclass
class Report:
    """Everything a run measured; `problems` are breakages (exit 1), `missed` are missed targets."""

    machine: dict[str, Any]
    plan: dict[str, Any]
    phases: list[Phase] = field(default_factory=list)
    inbox_checks: list[dict[str, Any]] = field(default_factory=list)
    bare_per_s: float = math.nan  # best bare throughput window
    full_per_s: float = math.nan  # best full throughput window
    round_ratios: list[float] = field(default_factory=list)  # full / bare of each round (back to back)
    clean_rounds: list[int] = field(default_factory=list)  # rounds where other load stayed <= QUIET
    ratio: float = math.nan  # median of the clean rounds' ratios (of all if none): judged against the target
    best_ratio: float = math.nan  # full_per_s / bare_per_s
    ratio_per_cpu: float = math.nan  # median over rounds of (full 200s per server CPU-s) / (bare ...)
    p99_ms: float = math.nan
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    server_log_tail: str = ""  # the servers' stderr, when something broke


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import aiohttp
    import sqlalchemy

    return {
        "nproc": os.cpu_count(), "python": platform.python_version(), "aiohttp": aiohttp.__version__,
        "sqlalchemy": sqlalchemy.__version__, "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(), "loadavg_before": _loadavg(),
    }


def _loadavg() -> str | None:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return None


class Runner:
    """Runs the phases of a plan against fresh servers and records figures and checks."""

    def __init__(self, plan: Plan, requests: Sequence[bytes], workdir: Path, report: Report) -> None:
        self.plan, self.requests, self.workdir, self.report = plan, requests, workdir, report
        self.log_path = workdir / "servers.log"

    async def phase(self, server: Server, kind: str) -> Phase:
        """One open-loop phase; the server gets requests it has never seen."""
        plan = self.plan
        if kind == "throughput":
            rate, duration, warmup, conns = plan.throughput_rate, plan.throughput_s, plan.warmup_s, plan.connections
        else:
            duration = plan.processing_latency_s if server.kind == "full-processing" else plan.latency_s
            rate, warmup, conns = plan.latency_rate, 0.0, plan.latency_connections
        print(f"{server.kind} {kind}: {rate:.0f}/s for {duration:g} s ...", file=sys.stderr, flush=True)
        load = OpenLoad(self.requests, first=server.cursor, rate=rate, duration=duration, connections=conns,
                        drop_backlog=kind == "throughput")
        await load.run(server, {"start": warmup, "end": duration})
        server.cursor += load.tally.sent
        phase = summarize(load, server, kind, warmup)
        self.report.phases.append(phase)
        return phase

    @asynccontextmanager
    async def full_server(self, kind: str, label: str) -> AsyncIterator[tuple[Server, list[Phase]]]:
        """A full server on a fresh database; once it has stopped, inbox rows must equal its 200s."""
        db_path = self.workdir / f"{kind}-{label}.db"
        phases: list[Phase] = []
        async with self.server(kind, db_path) as server:
            yield server, phases
        commits = server.stats.get("commits")
        for phase in phases:  # the writer's figures cover the server's whole life
            phase.commits = commits
            phase.rows_per_commit = server.stats["rows"] / commits if commits else None
        answered = sum(p.ok for p in phases)
        counts = inbox_counts(db_path)
        self.report.inbox_checks.append({"server": kind, "phases": label, "answered_200": answered, **counts})
        if not counts["rows"] == counts["distinct"] == answered:
            self.report.problems.append(f"{kind} {label}: {answered} answered 200 but {counts['rows']} inbox rows "
                                        f"({counts['distinct']} distinct)")
        if kind == "full" and set(counts["statuses"]) - {"pending"}:
            self.report.problems.append(f"{kind}: rows were processed with processing off: {counts['statuses']}")

    def server(self, kind: str, db_path: Path | None = None) -> AbstractAsyncContextManager[Server]:
        """A server subprocess whose stderr goes to the run's log file."""
        return running_server(kind, self.log_path, db_path)

    async def calibrate(self) -> None:
        """The null server: the most aiohttp and this generator can do together."""
        async with self.server("null") as server:
            await self.phase(server, "throughput")

    async def throughput(self) -> None:
        """Bare and full alternate, `rounds` times, so that both see the same machine conditions."""
        async with self.server("bare") as bare, self.full_server("full", "throughput") as (full, phases):
            for _ in range(self.plan.rounds):
                await self.phase(bare, "throughput")
                phases.append(await self.phase(full, "throughput"))

    async def latency(self, kind: str) -> None:
        """Ack latency at the plan's steady rate, on a fresh server."""
        async with self.full_server(kind, "latency") as (server, phases):
            phases.append(await self.phase(server, "latency"))

    async def processing_throughput(self) -> None:
        """Throughput of the app with stored rows processed (its ack path shares the loop)."""
        async with self.full_server("full-processing", "throughput") as (server, phases):
            phases.append(await self.phase(server, "throughput"))


async def run(plan: Plan) -> Report:
    """All phases: [null], bare/full throughput rounds, full latency, [full-processing throughput, latency]."""
    started = time.perf_counter()
    report = Report(machine=machine(), plan=asdict(plan))
    count = plan.requests_needed()
    print(f"building {count} signed, encrypted requests ...", file=sys.stderr, flush=True)
    requests = build_requests(count)
    with tempfile.TemporaryDirectory(prefix="salesbot-bench-") as tmp:
        runner = Runner(plan, requests, Path(tmp), report)
        try:
            if plan.calibrate:
                await runner.calibrate()
            await runner.throughput()
            await runner.latency("full")
            if plan.processing_variant:
                await runner.processing_throughput()
                await runner.latency("full-processing")
        except BenchError as exc:
            report.problems.append(str(exc))
        judge(report)
        if report.problems:
            report.server_log_tail = _tail(runner.log_path, 40)
    report.seconds = time.perf_counter() - started
    return report


def _quiet(phase: Phase) -> bool:
    return phase.other_cpu is None or phase.other_cpu <= QUIET


def judge(report: Report) -> None:
    """Breakages, warnings and the two targets."""
    for p in report.phases:
        if p.errors:
            report.problems.append(f"{p.server} {p.kind}: errors {p.errors}")
        if p.kind == "latency" and (p.unsent or p.sent != p.scheduled):
            report.problems.append(f"{p.server} latency: not every scheduled request was sent")
        if not _quiet(p):
            report.warnings.append(f"{p.server} {p.kind}: other processes used {p.other_cpu:.0%} of a core")
        if p.kind == "throughput" and p.server != "null" and p.ok_per_s >= 0.9 * p.offered_per_s:
            report.warnings.append(f"{p.server} kept up with the offered {p.offered_per_s:.0f}/s: "
                                   "raise --rate to measure its capacity")
    bares = [p for p in report.phases if p.server == "bare"]
    fulls = [p for p in report.phases if p.server == "full" and p.kind == "throughput"]
    latency = next((p for p in report.phases if p.server == "full" and p.kind == "latency"), None)
    if not bares or not fulls or latency is None:  # the run broke off: nothing to compare
        report.missed.append("not measured")
        return
    best_bare, best_full = max(bares, key=lambda p: p.ok_per_s), max(fulls, key=lambda p: p.ok_per_s)
    if max(p.generator_cpu for p in bares) > 0.9:
        report.warnings.append("the generator used over 90% of a core against bare: it may be the bottleneck")
    report.bare_per_s, report.full_per_s = best_bare.ok_per_s, best_full.ok_per_s
    report.best_ratio = best_full.ok_per_s / best_bare.ok_per_s if best_bare.ok_per_s else math.nan
    rounds = list(zip(bares, fulls, strict=True))
    report.round_ratios = [f.ok_per_s / b.ok_per_s if b.ok_per_s else math.nan for b, f in rounds]
    report.clean_rounds = [i for i, (b, f) in enumerate(rounds) if _quiet(b) and _quiet(f)]
    if not report.clean_rounds:
        report.warnings.append("no round ran undisturbed by other processes: the ratio is unreliable, "
                               "see the per-CPU-second figure")
    judged = [report.round_ratios[i] for i in report.clean_rounds] or report.round_ratios
    report.ratio = statistics.median(judged)
    per_cpu = [(f.ok_per_s / f.server_cpu) / (b.ok_per_s / b.server_cpu)
               for b, f in rounds if b.ok_per_s and b.server_cpu and f.server_cpu]
    report.ratio_per_cpu = statistics.median(per_cpu) if per_cpu else math.nan
    report.p99_ms = latency.latency_ms["p99"]
    if not report.ratio >= TARGET_RATIO:
        report.missed.append(f"throughput ratio {report.ratio:.3f} < {TARGET_RATIO}")
    if not report.p99_ms <= TARGET_P99_MS:
        report.missed.append(f"p99 at {latency.offered_per_s:.0f} msg/s {report.p99_ms:.1f} ms > {TARGET_P99_MS} ms")


# ------------------------------------------------------------------------------------------ output


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


COLUMNS = (  # header, width
    ("server", 16), ("phase", 11), ("offered/s", 10), ("conns", 6), ("sent", 7), ("200s", 7), ("errors", 7),
    ("200s/s", 7), ("p50 ms", 8), ("p90 ms", 8), ("p99 ms", 8), ("max ms", 8), ("srv CPU", 8),
    ("200s/CPU-s", 11), ("gen CPU", 8), ("other", 6), ("rows/commit", 12),
)


def render(report: Report) -> str:
    """The human-readable table and verdicts."""
    m = report.machine
    lines = [
        f"P1 callback benchmark — {m['nproc']} CPUs, Python {m['python']}, aiohttp {m['aiohttp']}, "
        f"SQLAlchemy {m['sqlalchemy']}, SQLite {m['sqlite']} (WAL, synchronous=FULL); "
        f"load average before: {m['loadavg_before']}",
        "",
        "".join(f"{h:<{w}}" if i < 2 else f"{h:>{w}}" for i, (h, w) in enumerate(COLUMNS)),
    ]
    for p in report.phases:
        lat = p.latency_ms
        per_cpu = p.ok_per_s / p.server_cpu if p.server_cpu else None
        cells = [
            p.server, p.kind, f"{p.offered_per_s:.0f}", str(p.connections), str(p.sent), str(p.ok),
            str(sum(p.errors.values())), f"{p.ok_per_s:.0f}", _fmt(lat["p50"]), _fmt(lat["p90"]),
            _fmt(lat["p99"]), _fmt(lat["max"]), _fmt(p.server_cpu, ".0%"), _fmt(per_cpu, ".0f"),
            _fmt(p.generator_cpu, ".0%"), _fmt(p.other_cpu, ".0%"), _fmt(p.rows_per_commit),
        ]
        lines.append("".join(f"{c:<{w}}" if i < 2 else f"{c:>{w}}"
                             for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))))
    lines.append("")
    verdict = "met" if report.ratio >= TARGET_RATIO else "MISSED"
    rounds = ", ".join(_fmt(r, ".3f") + ("" if i in report.clean_rounds else " (disturbed)")
                       for i, r in enumerate(report.round_ratios))
    which = "undisturbed rounds" if report.clean_rounds else "all rounds"
    lines.append(f"throughput ratio full/bare: {report.ratio:.3f} (median of {which}; rounds: {rounds}; "
                 f"target >= {TARGET_RATIO}: {verdict})")
    lines.append(f"  best windows: bare {report.bare_per_s:.0f}/s, full {report.full_per_s:.0f}/s, ratio "
                 f"{report.best_ratio:.3f}; per server CPU-second: {_fmt(report.ratio_per_cpu, '.3f')} "
                 "(least disturbed by other load)")
    verdict = "met" if report.p99_ms <= TARGET_P99_MS else "MISSED"
    lines.append(f"full ack p99 at 200 msg/s: {report.p99_ms:.1f} ms (target <= {TARGET_P99_MS:.0f} ms: {verdict})")
    for c in report.inbox_checks:
        same = "ok" if c["rows"] == c["answered_200"] == c["distinct"] else "MISMATCH"
        lines.append(f"inbox check {c['server']} {c['phases']}: {c['answered_200']} answered 200, "
                     f"{c['rows']} rows, {c['distinct']} distinct, statuses {c['statuses']}: {same}")
    lines.extend(f"warning: {w}" for w in report.warnings)
    lines.extend(f"BROKEN: {p}" for p in report.problems)
    if report.server_log_tail:
        lines += ["servers' stderr (last lines):", report.server_log_tail]
    lines.append(f"({report.seconds:.1f} s)")
    return "\n".join(lines)


def _finite(value: Any) -> Any:
    """NaN (not measured) as JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.callback", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="CI form: short phases, no processing variant")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a performance target is missed")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--rate", type=float, help="offered rate of the throughput phases (above capacity)")
    parser.add_argument("--connections", type=int, help="client connections in the throughput phases")
    parser.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)  # internal: run one server
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        asyncio.run(serve(args.serve, args.db))
        return 0
    plan = SHORT if args.short else FULL
    if args.rate:
        plan = replace(plan, throughput_rate=args.rate)
    if args.connections:
        plan = replace(plan, connections=args.connections)
    try:
        report = asyncio.run(run(plan))
    except BenchError as exc:
        print(f"BROKEN: {exc}")
        return 1
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(_finite(asdict(report)), indent=2, ensure_ascii=False) + "\n")
    if report.problems:
        return 1
    if args.strict and report.missed:
        print("targets missed (--strict): " + "; ".join(report.missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
