"""Figures of the P1 benchmark: one `Phase` per open-loop phase, the run's `Report`, the verdicts
against the targets (`judge`) and the printed table (`render`)."""

from __future__ import annotations

import math
import os
import platform
import sqlite3
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loadgen import OpenLoad, latency_figures

TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
QUIET = 0.25  # other processes may use this much of a core before a phase counts as disturbed


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


def summarize(load: OpenLoad, server_kind: str, kind: str, warmup: float) -> Phase:
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
    server_cpu, generator_cpu = tally.cores_used("server"), tally.cores_used("generator")
    machine_cpu = tally.cores_used("machine")
    other = None
    if server_cpu is not None and generator_cpu is not None and machine_cpu is not None:
        other = max(0.0, machine_cpu - server_cpu - generator_cpu)
    return Phase(
        server=server_kind, kind=kind, offered_per_s=load.rate, duration_s=load.duration,
        connections=load.connections, scheduled=tally.scheduled, sent=tally.sent, unsent=tally.unsent,
        ok=tally.status.count(200), errors=errors, ok_per_s=ok_in_window / (end - start),
        latency_ms=latency_figures(ok_latency), server_cpu=server_cpu, generator_cpu=generator_cpu or 0.0,
        other_cpu=other,
    )


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


def finite(value: Any) -> Any:
    """NaN (not measured) as JSON null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value
