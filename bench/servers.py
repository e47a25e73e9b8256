"""The servers of the P1 benchmark, each run in its own subprocess (own interpreter, own event loop).

- `null`: reads the body and answers 200 — what aiohttp plus the generator can do at all;
- `bare`: every step `WeComCallback.receive` takes before storing, then 200 (nothing stored);
- `full`: the real app (`create_app`) on a fresh SQLite file, stored rows left pending;
- `full-processing`: the same app with each stored row handed to the dispatcher.

A server listens on 127.0.0.1 and a port the OS picks, prints `PORT n`, serves until its stdin
closes, then prints `STATS {json}` and exits. The parent starts and stops it with `running_server`;
by hand: `python -m bench.servers KIND [--db FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from bench.loadgen import HOST

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("null", "bare", "full", "full-processing")


class BenchError(RuntimeError):
    """Something is broken (not merely slow): the run cannot be trusted."""


# --------------------------------------------------------------------------- in the server process


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


def _ignore_stored(inbox_id: int, channel: str, sender: str) -> None:
    """Stands in for Deps.process_later when stored rows are not processed."""


def full_app(db_path: Path, *, processing: bool) -> web.Application:
    """The real app on a fresh SQLite file (WAL + synchronous=FULL, asserted by the app at start-up).

    Without `processing`, stored rows are left pending: `Deps.process_later` is replaced by a no-op
    on the instance before create_app hands it to WeComCallback as `on_stored` (create_app captures
    the bound method at construction, so it must be replaced inside build_deps; this subprocess is
    the only user of the patched module). The sender loop, the scheduler and start-up recovery are off.
    """
    import bot.app
    import bot.runtime
    from bot.deps import Deps
    from tests.conftest import make_settings

    settings = make_settings(f"sqlite+aiosqlite:///{db_path}")
    if not processing:
        build_deps = bot.runtime.build_deps  # what bot.app imported

        def build_deps_without_processing(*args: Any, **kwargs: Any) -> Deps:
            deps = build_deps(*args, **kwargs)
            deps.process_later = _ignore_stored  # type: ignore[method-assign]
            return deps

        # create_app looks `build_deps` up in bot.app's namespace at call time.
        cast(Any, bot.app).build_deps = build_deps_without_processing
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


# --------------------------------------------------------------------------- in the parent process


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


@asynccontextmanager
async def running_server(kind: str, log_path: Path, db_path: Path | None = None) -> AsyncIterator[Server]:
    """Start `python -m bench.servers KIND` (stderr to `log_path`) and stop it cleanly on exit."""
    args = [sys.executable, "-m", "bench.servers", kind]
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


# -------------------------------------------------------------- command line of the server process


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bench.servers KIND [--db FILE]`: run one server (what `running_server` starts)."""
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description="Run one P1 benchmark server.")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--db", type=Path, help="SQLite file of the full servers (created if missing)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.kind, args.db))
    return 0


if __name__ == "__main__":
    sys.exit(main())
