"""The process's language understanding: one jieba Lexicon, the intent rules, the customer-name index.

Built once per process (`Nlu.load` in a thread at start-up: jieba takes about a second). The customer
index follows the database: before a message is parsed a cheap signature query (counts, max ids, last
change) is compared with the one the index was built from, and the index and the jieba dictionary are
rebuilt when customers or aliases changed — in this process or in any other.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.nlu.customers import CustomerEntry, CustomerIndex
from bot.nlu.intents import IntentParser, Parsed
from bot.nlu.keywords import Keywords, extract_keywords
from bot.nlu.lexicon import Lexicon
from store.repos.customers import CustomerRepo


class Nlu:
    def __init__(self, lexicon: Lexicon, settings: Settings) -> None:
        self.lexicon = lexicon
        self.settings = settings
        self.parser = IntentParser(lexicon, settings.funnel, settings.capture)
        self.customers = CustomerIndex()
        self._signature: tuple[Any, ...] | None = None
        self._lock = asyncio.Lock()

    @classmethod
    async def load(cls, settings: Settings, lexicon: Lexicon | None = None) -> Nlu:
        """Build (or reuse) the Lexicon off the event loop."""
        if lexicon is None:
            lexicon = await asyncio.to_thread(Lexicon.load, settings)
        return cls(lexicon, settings)

    async def customer_index(self, session: AsyncSession) -> CustomerIndex:
        """The index of every customer's names, rebuilt when the customers table changed."""
        repo = CustomerRepo(session)
        signature = await repo.signature()
        if signature == self._signature:
            return self.customers
        async with self._lock:
            if signature != self._signature:
                rows = await repo.name_rows()
                index = CustomerIndex(
                    CustomerEntry(cid, name, owner, tuple(aliases)) for cid, name, owner, aliases in rows
                )
                self.lexicon.add_words(index.words(), tag="customer")
                self.customers, self._signature = index, signature
        return self.customers

    async def parse(self, session: AsyncSession, text: str, now: datetime, user_id: int | None) -> Parsed:
        index = await self.customer_index(session)
        return self.parser.parse(text, now, index, user_id=user_id)

    def keywords(self, text: str) -> Keywords:
        return extract_keywords(self.lexicon, text, self.settings.capture.note_keywords)
