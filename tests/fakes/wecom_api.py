"""The fake WeCom API lives in the package (the demo uses it too); tests start it with the test app's ids."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.clock import Clock
from bot.devtools import fake_wecom
from bot.devtools.fake_wecom import FakeWeCom, Fault, Message, RecordedRequest
from tests.conftest import AGENT_ID, CORP_ID, SECRET

__all__ = ["FakeWeCom", "Fault", "Message", "RecordedRequest", "running_fake_wecom"]


@asynccontextmanager
async def running_fake_wecom(clock: Clock, **kwargs: Any) -> AsyncIterator[FakeWeCom]:
    """A fake for the test settings' corp, secret and agent (overridable)."""
    kwargs.setdefault("corp_id", CORP_ID)
    kwargs.setdefault("secret", SECRET)
    kwargs.setdefault("agent_id", AGENT_ID)
    async with fake_wecom.running_fake_wecom(clock, **kwargs) as fake:
        yield fake
