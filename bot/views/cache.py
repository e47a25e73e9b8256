"""R20: a manager view is computed at most once per `[views] max_staleness_s` for the same viewer, command
and arguments, and never served after a write this process committed (the key carries the write generation).

Another process's writes (a second server on PostgreSQL) are seen when the entry expires, so an answer is
never staler than `max_staleness_s` (default 180 s: "fresh to within 3 minutes"). Time is the injected
clock's `now`, so tests move it instead of sleeping. One cache per process, built with the app's Deps.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from store.repos.contracts import RebateBook

T = TypeVar("T")
V = TypeVar("V")


class ViewCache:
    def __init__(self, max_staleness_s: float, *, max_entries: int = 512) -> None:
        self._ttl = timedelta(seconds=max_staleness_s)
        self._max = max_entries
        self._entries: OrderedDict[Hashable, tuple[int, datetime, object]] = OrderedDict()
        self.generation = 0
        self.hits = 0
        self.misses = 0
        # R8: reps' contracts per rebate version; a write does not clear them (the version tells)
        self.books: VersionedCache[RebateBook] = VersionedCache(
            lambda book: len(book.contracts) + len(book.payments) + len(book.freezes))

    def invalidate(self) -> None:
        """Something was written: every cached view may be stale."""
        self.generation += 1
        self._entries.clear()

    async def get(self, key: Hashable, now: datetime, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached value for `key` if computed after the last write and less than the staleness bound ago,
        else `compute()` (stored unless a write happened meanwhile)."""
        found = self._entries.get(key)
        if found is not None:
            generation, at, value = found
            if generation == self.generation and at <= now < at + self._ttl:
                self.hits += 1
                self._entries.move_to_end(key)
                return value  # type: ignore[return-value]
        self.misses += 1
        generation = self.generation
        value = await compute()
        if generation == self.generation:
            self._entries[key] = (generation, now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value


class VersionedCache(Generic[V]):
    """Values kept per key and version (R8: a rep's contracts per rebate version, store/repos/contracts.py): a
    value is served only for the version it was read at, so it is never stale whichever process wrote; the
    least recently used go first once the cached items (`size` of each value) pass `max_items`."""

    def __init__(self, size: Callable[[V], int], *, max_items: int = 300_000) -> None:
        self._size, self._max = size, max_items
        self._entries: OrderedDict[Hashable, tuple[Hashable, V, int]] = OrderedDict()
        self._items = 0
        self.hits = 0
        self.misses = 0

    def entry(self, key: Hashable) -> tuple[Hashable, V] | None:
        """The version and value held for `key`, whatever the version (a reader may refresh it)."""
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0], found[1]

    def get(self, key: Hashable, version: Hashable) -> V | None:
        found = self.entry(key)
        if found is None or found[0] != version:
            self.misses += 1
            return None
        self.hits += 1
        return found[1]

    def put(self, key: Hashable, version: Hashable, value: V) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._items -= old[2]
        size = self._size(value)
        if size > self._max:
            return  # one value larger than the whole cache: not kept
        self._entries[key] = (version, value, size)
        self._items += size
        while self._items > self._max:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self._items -= dropped
