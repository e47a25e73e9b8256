"""NLU benchmark: what building the jieba Lexicon costs at start-up, and R15 keyword extraction per note.

Measured:
1. `Lexicon.load(settings)`, each run in a fresh interpreter (a subprocess), so the import, jieba's
   dictionary build and its cache file are real:
   - `cold`: an empty `[nlu] cache_dir` — jieba builds its prefix dictionary from dict.txt and writes
     the cache there;
   - `warm`: the cache the cold run left (a normal restart);
   - `warm, cut only`: the same with `prepare_keywords=False` (no jieba.analyse TF-IDF table), what a
     process that only cuts text pays.
   Each child reports the import time of bot.nlu.lexicon, the wall and CPU time of `Lexicon.load`,
   the peak RSS (`resource.getrusage().ru_maxrss`) and the RSS after loading (/proc/self/statm).
2. In this process, on a warm Lexicon: `keywords(note, 8)` for a 30-character and a 300-character
   note (median and p99 over --runs calls, 2000 by default, after a warm-up), and `cut` alone.

Run:  python -m bench.nlu_startup                 # about 15 s
      python -m bench.nlu_startup --repeat 5 --runs 5000
      python -m bench.nlu_startup --json out.json
Exit status 1 when a child fails (its stderr is printed).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

NOTE_30 = "纪要：见了华远王总，预算50万左右，竞品是用友和金蝶，月底前"
NOTE_300 = (
    "纪要：今天下午和华远科技王总、IT总监李总监在他们公司会议室聊了一个半小时。"
    "他们现在用的是用友U8，财务和仓库两边每个月底都要人工统计、手工对账，经常出错，"
    "库存积压也看不清楚，老板对这件事很不满意。预算大概50万左右，需要走预算审批，"
    "董事长拍板。竞品方面金蝶和鼎捷都来过，金蝶报价比我们低一些，但是实施周期长。"
    "客户希望年底前上线，Q1之前完成验收，下周安排一次产品演示，"
    "再约技术负责人做一次需求调研，争取月底前拿到客户签字页。"
    "另外他们的销售团队还在用Excel记客户，想顺便看看我们的CRM模块和移动端审批，"
    "付款方式倾向分三期，首付30%，账期希望90天。下次拜访带上售前同事一起去，把报价单准备好。"
)


@dataclass
class LoadRun:
    """One Lexicon.load in a fresh interpreter."""

    phase: str  # cold | warm | warm, cut only
    import_s: float  # import bot.nlu.lexicon (jieba, bot.config)
    load_s: float  # Lexicon.load wall time
    load_cpu_s: float  # Lexicon.load CPU time of the process (wall >> CPU means a busy machine)
    peak_rss_mib: float  # ru_maxrss at the end
    start_rss_mib: float  # ru_maxrss before the import (the interpreter itself)
    rss_after_mib: float | None  # resident set after loading (/proc/self/statm)
    cache_bytes: int


@dataclass
class Timing:
    """Per-call figures of one operation on one note."""

    what: str
    chars: int
    runs: int
    median_us: float
    p99_us: float
    max_us: float


# --------------------------------------------------------------------------------------- the child


def _rss_now_mib() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _maxrss_mib() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def child(phase: str, cache_dir: str) -> dict[str, Any]:
    """Import and load one Lexicon in this (fresh) interpreter; the figures as a dict."""
    start_rss = _maxrss_mib()
    started = time.perf_counter()
    from bot.config import NluSettings, Settings
    from bot.nlu.lexicon import Lexicon

    imported = time.perf_counter()
    cpu = time.process_time()
    lexicon = Lexicon.load(Settings(nlu=NluSettings(cache_dir=cache_dir)), prepare_keywords=phase != "warm, cut only")
    loaded = time.perf_counter()
    rss_after = _rss_now_mib()  # while the Lexicon is alive
    cache = sum(p.stat().st_size for p in Path(cache_dir).glob("*.cache"))
    run = LoadRun(
        phase=phase,
        import_s=imported - started,
        load_s=loaded - imported,
        load_cpu_s=time.process_time() - cpu,
        peak_rss_mib=_maxrss_mib(),
        start_rss_mib=start_rss,
        rss_after_mib=rss_after,
        cache_bytes=cache,
    )
    del lexicon
    return asdict(run)


# -------------------------------------------------------------------------------------- the parent


def load_in_subprocess(phase: str, cache_dir: Path) -> LoadRun:
    """Run `child` in a fresh interpreter; BenchError-like SystemExit with its stderr when it fails."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.nlu_startup", "--child", phase, "--cache-dir", str(cache_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {phase!r} failed (exit {proc.returncode}):\n{proc.stderr}")
    return LoadRun(**json.loads(lines[-1].removeprefix("RESULT ")))


def time_calls(what: str, text: str, call: Callable[[], object], runs: int) -> Timing:
    """Median, p99 and max of `runs` calls, after a warm-up of a tenth as many."""
    for _ in range(max(runs // 10, 10)):
        call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return Timing(what, len(text), runs, statistics.median(samples) / 1000, p99 / 1000, samples[-1] / 1000)


def per_message(cache_dir: Path, runs: int) -> list[Timing]:
    """keywords() and cut() per note on a warm Lexicon in this process."""
    from bot.config import NluSettings, Settings
    from bot.nlu.lexicon import Lexicon

    lexicon = Lexicon.load(Settings(nlu=NluSettings(cache_dir=str(cache_dir))))
    lexicon.add_words(["华远科技", "华远"])
    timings = []
    for note in (NOTE_30, NOTE_300):
        timings.append(time_calls("keywords(note, 8)", note, functools.partial(lexicon.keywords, note, 8), runs))
        timings.append(time_calls("cut(note)", note, functools.partial(lexicon.cut, note), runs))
    return timings


def render(loads: list[LoadRun], timings: list[Timing]) -> str:
    """The two tables, in the Markdown bench/README.md uses."""
    out = [
        "| phase | import s | load s | load CPU s | peak RSS MiB | RSS after load MiB | interpreter MiB | cache MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in loads:
        after = f"{run.rss_after_mib:.0f}" if run.rss_after_mib is not None else "n/a"
        out.append(
            f"| {run.phase} | {run.import_s:.3f} | {run.load_s:.3f} | {run.load_cpu_s:.3f} | "
            f"{run.peak_rss_mib:.0f} | {after} | {run.start_rss_mib:.0f} | {run.cache_bytes / 2**20:.1f} |"
        )
    out += ["", "| call | chars | runs | median µs | p99 µs | max µs |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for t in timings:
        out.append(f"| {t.what} | {t.chars} | {t.runs} | {t.median_us:.0f} | {t.p99_us:.0f} | {t.max_us:.0f} |")
    return "\n".join(out)


def summary(loads: list[LoadRun]) -> str:
    """Median per phase when --repeat > 1."""
    lines = []
    for phase in dict.fromkeys(run.phase for run in loads):
        runs = [run for run in loads if run.phase == phase]
        lines.append(
            f"{phase}: load median {statistics.median(r.load_s for r in runs):.3f} s "
            f"(min {min(r.load_s for r in runs):.3f}), peak RSS median "
            f"{statistics.median(r.peak_rss_mib for r in runs):.0f} MiB over {len(runs)} runs"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.nlu_startup", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="calls per per-message figure (default 2000)")
    parser.add_argument("--repeat", type=int, default=3, help="cold/warm subprocess loads of each kind (default 3)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: one load in this interpreter
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(args.child, args.cache_dir)))
        return 0
    loads: list[LoadRun] = []
    with tempfile.TemporaryDirectory(prefix="nlu-bench-") as tmp:
        try:
            for i in range(args.repeat):
                cache_dir = Path(tmp) / f"cache-{i}"  # a new, empty cache dir per cold run
                loads.append(load_in_subprocess("cold", cache_dir))
                loads.append(load_in_subprocess("warm", cache_dir))
                loads.append(load_in_subprocess("warm, cut only", cache_dir))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"BROKEN: {exc}")
            return 1
        loads.sort(key=lambda run: ("cold", "warm", "warm, cut only").index(run.phase))
        timings = per_message(Path(tmp) / "cache-0", args.runs)
    load_avg = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load_avg}")
    print(render(loads, timings))
    print()
    print(summary(loads))
    if args.json:
        figures = {"loads": [asdict(r) for r in loads], "per_message": [asdict(t) for t in timings]}
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
