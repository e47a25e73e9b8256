"""The `salesbot` command, run as a real subprocess (config file, exit codes, output)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from sqlalchemy import select

from bot.channels.base import Text
from bot.clock import SettableClock
from store.models import OutboxMessage
from store.repos.outbox import enqueue
from tests.conftest import AES_KEY, AGENT_ID, API_TOKEN, CORP_ID, SECRET, TOKEN
from tests.fakes.wecom_api import running_fake_wecom
from tests.harness import seed_team

SALESBOT = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parent.parent


def write_config(path: Path, db_url: str, api_base: str = "http://127.0.0.1:9") -> Path:
    path.write_text(
        f"""
[database]
url = "{db_url}"
[wecom]
corp_id = "{CORP_ID}"
agent_id = {AGENT_ID}
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
api_base = "{api_base}"
[api]
token = "{API_TOKEN}"
[scheduler]
enabled = false
""",
        encoding="utf-8",
    )
    return path


async def run(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *SALESBOT, *args, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_db_upgrade(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    code, out, err = await run("--config", str(cfg), "db", "upgrade", env={"SALESBOT_WECOM_SECRET": SECRET})
    assert code == 0, err
    assert "0006" in out


async def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    # No secret anywhere: serve refuses to start and says which key.
    code, _out, err = await run("--config", str(cfg), "serve", env={"SALESBOT_WECOM_SECRET": ""})
    assert code == 2
    assert "[wecom] secret" in err and "SALESBOT_WECOM_SECRET" in err


async def test_jobs_run_outbox_at_a_given_moment(db_url: str, db, clock: SettableClock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with running_fake_wecom(clock) as fake:
        async with db.transaction() as s:
            enqueue(s, channel="wecom", recipient="zhangsan", reply=Text("你好"), now=clock.now())
        cfg = write_config(tmp_path / "c.toml", db_url, fake.api_base)
        code, out, err = await run("--config", str(cfg), "jobs", "run", "outbox", "--now", "2026-11-30T10:00:00",
                                   env={"SALESBOT_WECOM_SECRET": SECRET})
        assert code == 0, err
        assert out.strip() == "outbox: 1"
        assert [m.content for m in fake.delivered("zhangsan")] == ["你好"]
        async with db.sessions() as s:
            row = (await s.scalars(select(OutboxMessage))).one()
        assert row.status == "sent"


async def test_unknown_job_is_a_clear_error(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    code, _out, err = await run("--config", str(cfg), "jobs", "run", "nope", env={"SALESBOT_WECOM_SECRET": SECRET})
    assert code == 2 and "unknown job 'nope'" in err


async def test_local_chat(db_url: str, db, clock: SettableClock, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    await seed_team(db, clock)
    cfg = write_config(tmp_path / "c.toml", db_url)
    code, out, err = await run("--config", str(cfg), "chat", "--user", "zhangsan", stdin="帮助\n取消\n/quit\n".encode(),
                               env={"SALESBOT_WECOM_SECRET": SECRET})
    assert code == 0, err
    assert "salesbot 能帮你做什么" in out and "没有进行中的对话" in out


async def test_demo_runs_end_to_end() -> None:
    code, out, err = await run("demo")
    assert code == 0, err
    assert "salesbot → 张三" in out  # a reply delivered through the fake WeCom API
    assert "已去重" in out  # the re-delivered callback was deduplicated
    assert "还没有开通" in out  # a stranger got the polite refusal
    # Issue 3: a check-in in one message and one over three turns, a note with its keywords, a stage move
    # blocked by its gate and then passed.
    assert out.count("✅ 已记录拜访") == 2 and "多长时间" in out and "一句话说说这次拜访的结论" in out
    assert "纪要已记下" in out and "🏷 竞品：用友" in out
    assert "还不能进入「方案呈现」" in out and "需求诊断 → 方案呈现" in out
    # Issue 4: the week fast-forwarded: a stall card and its button press, nudges, the stand-up table.
    assert "[卡片] 商机停滞" in out and "[点击卡片按钮]" in out and "次卡片更新" in out
    assert "仍未分配" in out and "没有跟进记录" in out and "周会汇总" in out
    # Issue 5: 我的返点 before and after a payment through the API, the frozen bonus, 我的过程分, a manager's
    # 团队健康度 and 漏斗 华东, and a rep refused the funnel.
    money = out[out.index("钱和过程"):]
    assert money.count("**我的返点 · IT 服务") == 2 and "累计 ¥4,250.00" in money and "累计 ¥12,000.00" in money
    assert "🧊 冻结 ¥1,250.00" in money and "大单快回款" in money and "（HTTP 200）" in money
    assert "**我的过程分 · " in money and "**提分建议**" in money
    assert "**团队健康度 · 我的团队" in money and "**漏斗 · 华东**" in money and "是给主管和销售运营看的" in money


async def test_serve_starts_upgrades_and_answers(tmp_path: Path, clock: SettableClock) -> None:
    """`salesbot serve --config FILE`: migrates a fresh database, serves /healthz and the callback."""
    import socket

    import aiohttp

    from tests.fakes.wire import WeComWire

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with running_fake_wecom(clock) as fake:
        cfg = write_config(tmp_path / "c.toml", f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}", fake.api_base)
        proc = await asyncio.create_subprocess_exec(
            *SALESBOT, "--config", str(cfg), "serve", "--port", str(port), cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "SALESBOT_WECOM_SECRET": SECRET},
        )
        try:
            assert proc.stderr is not None
            while True:  # readiness from the server's own log line
                line = (await asyncio.wait_for(proc.stderr.readline(), timeout=60)).decode()
                assert line, "server exited before serving"
                if "serving on" in line:
                    break
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200
                wire = WeComWire(TOKEN, AES_KEY, CORP_ID, AGENT_ID)
                signed = wire.envelope(wire.text("stranger", "帮助"))
                async with http.post(f"http://127.0.0.1:{port}/wecom/callback?{signed.query}", data=signed.body) as r:
                    assert r.status == 200
            await fake.wait_delivered(1, userid="stranger", timeout=20)
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), timeout=30)


async def test_import_twice_and_a_bad_row(db_url: str, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`salesbot import`: the same file twice changes nothing; a bad row is reported with its line."""
    from sqlalchemy import func

    from store.models import Customer

    cfg = write_config(tmp_path / "c.toml", db_url)
    users = ROOT / "bot" / "demo_data" / "users.csv"
    code, out, err = await run("--config", str(cfg), "import", "users", str(users))
    assert code == 0, out + err
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "\ufeffexternal_id,name,industry\nC1,华远科技,IT服务\nC2,,零售\nC3,东方零售,零售\n", encoding="utf-8"
    )
    code, out, _ = await run("--config", str(cfg), "import", "customers", str(csv))
    assert code == 1  # some rows failed
    assert "第 3 行" in out and "name" in out
    code, out2, _ = await run("--config", str(cfg), "import", "customers", str(csv))
    assert code == 1
    async with db.sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == 2
        names = set((await s.scalars(select(Customer.name))).all())
    assert names == {"华远科技", "东方零售"}
    assert "新建 0" in out2 and "未变 2" in out2
