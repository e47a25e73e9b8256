"""P1 benchmark: the durable WeCom callback path against a bare verify+decrypt handler.

Measured (see bench/README.md for the figures):
1. Throughput, in one run and with the same load generator: completed 200s per second of
   - `bare`: an aiohttp handler that screens and parses the envelope, verifies the signature,
     decrypts, parses the inner message and answers 200 (nothing stored);
   - `full`: the real app (`create_app`) — the same steps, then the inbox commit (group commit,
     SQLite WAL + synchronous=FULL) before the 200.
   The ratio full / bare is the figure of merit (target >= 0.5).
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
      python -m bench.callback --short    # CI form, under 25 s
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
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
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
        query = parse_query(request.query_string)
        body = await request.content.read(max_body + 1)
        if len(body) > max_body:
            return web.Response(status=413, text="body too large")
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


def _ignore_stored(inbox_id: int) -> None:
    """Stands in for Deps.process_later when stored rows are not to be processed."""


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
    stats: dict[str, Any] = field(default_factory=dict)

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
async def running_server(kind: str, db_path: Path | None = None) -> AsyncIterator[Server]:
    """Start `python -m bench.callback --serve KIND` and stop it cleanly on exit."""
    args = [sys.executable, "-m", "bench.callback", "--serve", kind]
    if db_path is not None:
        args += ["--db", str(db_path)]
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        if not line.startswith(b"PORT "):
            raise BenchError(f"{kind} server did not start (said {line!r})")
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

    def __init__(self, requests: Sequence[bytes], *, rate: float, duration: float, connections: int,
                 drop_backlog: bool) -> None:
        self.requests, self.rate, self.duration = requests, rate, duration
        self.connections, self.drop_backlog = connections, drop_backlog
        self.tally = Tally(scheduled=math.floor(rate * duration))
        if self.tally.scheduled > len(requests):
            raise BenchError(f"{self.tally.scheduled} requests scheduled, {len(requests)} built")
        self._loop = asyncio.get_running_loop()
        self._live: list[_Connection] = []
        self._idle: list[_Connection] = []
        self._pending: deque[int] = deque()
        self._next = 0
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
    ok_latency = sorted(lat for lat, st in zip(tally.latency, tally.status, strict=True) if st == 200)
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
    latency_rate: float
    latency_s: float
    processing_latency_s: float
    connections: int  # client connections in the throughput phases (the server's concurrency)
    latency_connections: int
    calibrate: bool  # measure the `null` server first: what aiohttp + this generator can do at all
    processing_variant: bool  # also measure the full app with stored rows processed


SHORT = Plan(throughput_rate=14000, throughput_s=3, warmup_s=0.5, latency_rate=200, latency_s=5,
             processing_latency_s=0, connections=64, latency_connections=32, calibrate=False,
             processing_variant=False)
FULL = Plan(throughput_rate=14000, throughput_s=8, warmup_s=1, latency_rate=200, latency_s=20,
            processing_latency_s=10, connections=64, latency_connections=32, calibrate=True,
            processing_variant=True)


@dataclass
class Report:
    """Everything a run measured; `problems` are breakages (exit 1), `missed` are missed targets."""

    machine: dict[str, Any]
    plan: dict[str, Any]
    phases: list[Phase] = field(default_factory=list)
    inbox_checks: list[dict[str, Any]] = field(default_factory=list)
    ratio: float = math.nan
    ratio_per_cpu: float = math.nan
    p99_ms: float = math.nan
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    seconds: float = 0.0


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

    async def phase(self, server: Server, kind: str) -> Phase:
        plan = self.plan
        if kind == "throughput":
            rate, duration, warmup, conns = plan.throughput_rate, plan.throughput_s, plan.warmup_s, plan.connections
        else:
            duration = plan.processing_latency_s if server.kind == "full-processing" else plan.latency_s
            rate, warmup, conns = plan.latency_rate, 0.0, plan.latency_connections
        print(f"{server.kind} {kind}: {rate:.0f}/s for {duration:.0f} s ...", file=sys.stderr, flush=True)
        load = OpenLoad(self.requests, rate=rate, duration=duration, connections=conns,
                        drop_backlog=kind == "throughput")
        await load.run(server, {"start": warmup, "end": duration})
        phase = summarize(load, server, kind, warmup)
        self.report.phases.append(phase)
        return phase

    async def stateless(self, kind: str) -> None:
        """Throughput of a server that stores nothing (`null` or `bare`)."""
        async with running_server(kind) as server:
            await self.phase(server, "throughput")

    async def full(self, kind: str, phase_kind: str) -> None:
        """One phase on a fresh full server and database, then the inbox check on the stopped database."""
        db_path = self.workdir / f"{kind}-{phase_kind}.db"
        async with running_server(kind, db_path) as server:
            phase = await self.phase(server, phase_kind)
        commits = server.stats.get("commits")
        phase.commits = commits
        phase.rows_per_commit = server.stats["rows"] / commits if commits else None
        counts = inbox_counts(db_path)
        self.report.inbox_checks.append({"server": kind, "phase": phase_kind, "answered_200": phase.ok, **counts})
        if not counts["rows"] == counts["distinct"] == phase.ok:
            self.report.problems.append(
                f"{kind} {phase_kind}: {phase.ok} answered 200 but {counts['rows']} inbox rows "
                f"({counts['distinct']} distinct)")
        if kind == "full" and set(counts["statuses"]) - {"pending"}:
            self.report.problems.append(f"{kind}: rows were processed with processing off: {counts['statuses']}")


async def run(plan: Plan) -> Report:
    """All phases, each on a fresh server: [null], bare, full throughput, full latency, [full-processing]."""
    started = time.perf_counter()
    report = Report(machine=machine(), plan=asdict(plan))
    count = math.floor(max(plan.throughput_rate * plan.throughput_s, plan.latency_rate * plan.latency_s))
    print(f"building {count} signed, encrypted requests ...", file=sys.stderr, flush=True)
    requests = build_requests(count)
    with tempfile.TemporaryDirectory(prefix="salesbot-bench-") as tmp:
        runner = Runner(plan, requests, Path(tmp), report)
        if plan.calibrate:
            await runner.stateless("null")
        await runner.stateless("bare")
        await runner.full("full", "throughput")
        await runner.full("full", "latency")
        if plan.processing_variant:
            await runner.full("full-processing", "throughput")
            await runner.full("full-processing", "latency")
    judge(report)
    report.seconds = time.perf_counter() - started
    return report


def judge(report: Report) -> None:
    """Breakages, warnings and the two targets."""
    by = {(p.server, p.kind): p for p in report.phases}
    bare, full, latency = by[("bare", "throughput")], by[("full", "throughput")], by[("full", "latency")]
    for p in report.phases:
        if p.errors:
            report.problems.append(f"{p.server} {p.kind}: errors {p.errors}")
        if p.kind == "latency" and (p.unsent or p.sent != p.scheduled):
            report.problems.append(f"{p.server} latency: not every scheduled request was sent")
        if p.other_cpu is not None and p.other_cpu > 0.25:
            report.warnings.append(f"{p.server} {p.kind}: other processes used {p.other_cpu:.0%} of a core "
                                   "(on this machine's few CPUs that disturbs the figures)")
    for p in (bare, full):
        if p.ok_per_s >= 0.9 * p.offered_per_s:
            report.warnings.append(f"{p.server} kept up with the offered {p.offered_per_s:.0f}/s: "
                                   "raise --rate to measure its capacity")
    if bare.generator_cpu > 0.9:
        report.warnings.append(f"the generator used {bare.generator_cpu:.0%} of a core against bare: "
                               "it may be the bottleneck")
    report.ratio = full.ok_per_s / bare.ok_per_s if bare.ok_per_s else math.nan
    if bare.server_cpu and full.server_cpu:
        report.ratio_per_cpu = (full.ok_per_s / full.server_cpu) / (bare.ok_per_s / bare.server_cpu)
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
        lat = p.latency_ms if p.kind == "latency" else dict.fromkeys(p.latency_ms, math.nan)
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
    lines.append(f"throughput ratio full/bare: {report.ratio:.3f} (target >= {TARGET_RATIO}: {verdict}); "
                 f"per server CPU-second: {_fmt(report.ratio_per_cpu, '.3f')}")
    verdict = "met" if report.p99_ms <= TARGET_P99_MS else "MISSED"
    lines.append(f"full ack p99 at 200 msg/s: {report.p99_ms:.1f} ms (target <= {TARGET_P99_MS:.0f} ms: {verdict})")
    for c in report.inbox_checks:
        same = "ok" if c["rows"] == c["answered_200"] == c["distinct"] else "MISMATCH"
        lines.append(f"inbox check {c['server']} {c['phase']}: {c['answered_200']} answered 200, "
                     f"{c['rows']} rows, {c['distinct']} distinct, statuses {c['statuses']}: {same}")
    lines.extend(f"warning: {w}" for w in report.warnings)
    lines.extend(f"BROKEN: {p}" for p in report.problems)
    lines.append(f"({report.seconds:.1f} s)")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.callback", description=__doc__.split("\n\n")[0])
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
    report = asyncio.run(run(plan))
    print(render(report))
    if args.json:
        payload = asdict(report)
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=True) + "\n")
    if report.problems:
        return 1
    if args.strict and report.missed:
        print("targets missed (--strict): " + "; ".join(report.missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
