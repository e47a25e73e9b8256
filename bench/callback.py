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

Modules: bench.loadgen (requests, HTTP/1.1 client, open-loop generator, latency figures),
bench.servers (the server subprocesses, started and stopped by `running_server`), bench.report
(phase figures, verdicts, the table); this one runs the phases and checks the inbox.

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
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench.loadgen import OpenLoad, build_requests
from bench.report import Phase, Report, finite, judge, machine, render, summarize
from bench.servers import KINDS, BenchError, Server, running_server, serve

# -------------------------------------------------------------------------------------------- plan


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


# ------------------------------------------------------------------------------- phases and checks


def inbox_counts(db_path: Path) -> dict[str, Any]:
    """Rows in the inbox table of a stopped server's database."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT dedup_key) FROM inbox").fetchone()
        statuses = dict(conn.execute("SELECT status, count(*) FROM inbox GROUP BY status").fetchall())
    return {"rows": rows, "distinct": distinct, "statuses": statuses}


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


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
        phase = summarize(load, server.kind, kind, warmup)
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


# ------------------------------------------------------------------------------------ command line


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
    if args.serve:  # the old way of starting one server; bench.servers is what the runner starts now
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
        args.json.write_text(json.dumps(finite(asdict(report)), indent=2, ensure_ascii=False) + "\n")
    if report.problems:
        return 1
    if args.strict and report.missed:
        print("targets missed (--strict): " + "; ".join(report.missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
