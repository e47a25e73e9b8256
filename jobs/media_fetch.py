"""The media fetcher (R6): downloads the images and files reps send, while WeCom still has them.

A handler records an `Attachment` row (status pending) in its unit of work; the download happens here,
never inside a database transaction (SQLite would hold its write lock for the whole download). One run
(`run_once`) is three steps, like the outbox sender's:

1. Claim, in one short transaction: due rows (pending or failed, `next_attempt_at` <= now). Rows past
   `expires_at` become `expired` there and then, without a request. The others are leased by moving
   `next_attempt_at` to now + the lease, so another run or process does not take them meanwhile
   (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: BEGIN IMMEDIATE serialises the claims).
2. Download, outside any transaction, `CONCURRENCY` at a time, refusing bodies over `[media] max_bytes`
   (bot/channels/wecom/api.py), and write the file atomically (temporary file, fsync, os.replace) to
   `[media] dir`/YYYY/MM/<attachment id>-<sha256[:16]><ext>. The extension comes from the content type
   only: the name WeCom passes on is the sender's and is kept for display, never used in a path.
3. Record, in one short transaction per row: stored (path, size, sha256, content type, display name;
   and the key action the attachment is linked to by then, unless a later attachment already completes
   it), or expired (40007:
   WeCom no longer has it), or failed: retried after `retry_base_s` · 2^(attempts−1), never later than
   `expires_at`, at which point it is given up as expired. A failure is only recorded while this run
   still holds the lease; a crash leaves the lease to run out, and the row is fetched again.

Every outcome is counted in `salesbot_media_fetch_total{outcome=stored|failed|expired}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.wecom.api import (
    ApiNetworkError,
    ApiTokenError,
    Media,
    MediaTooLargeError,
    WeComApiError,
    WeComClient,
)
from bot.clock import SHANGHAI, Clock
from bot.config import Settings
from bot.metrics import Metrics
from store.db import Database
from store.models import Attachment, KeyAction
from store.repos.attachments import release_expired

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

CHANNEL: Final = "wecom"
DUE: Final = ("pending", "failed")
BATCH_SIZE: Final = 8  # rows claimed per run
CONCURRENCY: Final = 4  # downloads at once (each held in memory, at most [media] max_bytes)
LEASE_MARGIN_S: Final = 60  # on top of the downloads' time: a token fetch, writing, recording
MEDIA_EXPIRED: Final = 40007  # "invalid media_id": unknown or past its 3 days
# The extension of a stored file, from the content type WeCom answered with; anything else is .bin.
EXTENSIONS: Final = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "application/pdf": ".pdf",
    "voice/amr": ".amr",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "video/mp4": ".mp4",
    "text/plain": ".txt",
    "application/zip": ".zip",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
}
DEFAULT_EXTENSION: Final = ".bin"
FILE_NAME_MAX: Final = 255  # attachments.file_name


@dataclass(frozen=True)
class Claimed:
    """An attachment row leased by this run (`lease` is its next_attempt_at while held)."""

    id: int
    media_id: str
    received_at: datetime
    expires_at: datetime
    attempts: int
    lease: datetime


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to [media] dir, with "/" separators
    size_bytes: int
    sha256: str


class MediaFetcher:
    """Downloads `wecom` attachments. One per process; several processes may share one database."""

    def __init__(self, db: Database, client: WeComClient, settings: Settings, clock: Clock, metrics: Metrics) -> None:
        self._db = db
        self._client = client
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._is_pg = db.engine.dialect.name == "postgresql"
        media = settings.media
        rounds = math.ceil(BATCH_SIZE / CONCURRENCY)
        self._lease = timedelta(seconds=rounds * media.download_timeout_s + LEASE_MARGIN_S)

    @property
    def root(self) -> Path:
        """Where files are stored: `[media] dir`, absolute."""
        return Path(self._settings.media.dir).resolve()

    # ------------------------------------------------------------------ the loop

    async def run_forever(self, wakeup: asyncio.Event) -> None:
        """Run until cancelled: after each run wait for `wakeup` (set when an attachment is recorded)
        or `[media] fetch_interval_s`. A failing run is logged and the loop goes on."""
        while True:
            wakeup.clear()  # before the run, so rows recorded during it wake the next one
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("media fetcher: run failed; trying again after the fetch interval")
                handled = 0
            if handled >= BATCH_SIZE:
                continue  # a full batch: there is probably more waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=self._settings.media.fetch_interval_s)

    async def run_once(self, now: datetime | None = None) -> int:
        """Claim, download and record one batch; returns the number of rows handled (expired included)."""
        stamp: Callable[[], datetime] = self._clock.now if now is None else (lambda: now)
        claimed, expired = await self._claim(stamp())
        if claimed:
            gate = asyncio.Semaphore(CONCURRENCY)
            await asyncio.gather(*(self._fetch(row, gate, stamp) for row in claimed))
        return expired + len(claimed)

    # ------------------------------------------------------------------ claim

    async def _claim(self, now: datetime) -> tuple[list[Claimed], int]:
        a = Attachment
        stmt = (
            select(a.id, a.media_id, a.received_at, a.expires_at, a.attempts, a.last_error)
            .where(a.channel == CHANNEL, a.status.in_(DUE), a.next_attempt_at <= now)
            .order_by(a.next_attempt_at, a.id)
            .limit(BATCH_SIZE)
        )
        if self._is_pg:
            stmt = stmt.with_for_update(skip_locked=True)
        lease = now + self._lease
        async with self._db.transaction() as session:
            rows = (await session.execute(stmt)).all()
            live = [r for r in rows if r.expires_at > now]
            gone = [r for r in rows if r.expires_at <= now]
            for r in gone:
                error = f"media expired at {r.expires_at.isoformat()} before it could be downloaded"
                if r.last_error:
                    error += f" (last error: {r.last_error})"
                await session.execute(
                    update(a).where(a.id == r.id).values(status="expired", last_error=error),
                    execution_options={"synchronize_session": False},
                )
                await release_expired(session, r.id, now, text_max_bytes=self._settings.outbox.text_max_bytes)
            if live:
                await session.execute(
                    update(a).where(a.id.in_([r.id for r in live])).values(next_attempt_at=lease),
                    execution_options={"synchronize_session": False},
                )
        for r in gone:
            self._count("expired")
            log.warning("attachment %s: expired before it could be downloaded (%s attempts)", r.id, r.attempts)
        claimed = [
            Claimed(r.id, r.media_id, r.received_at, r.expires_at, r.attempts, lease) for r in live
        ]
        return claimed, len(gone)

    # ------------------------------------------------------------------ one row

    async def _fetch(self, row: Claimed, gate: asyncio.Semaphore, stamp: Callable[[], datetime]) -> None:
        async with gate:
            try:
                await self._attempt(row, stamp)
            except Exception:
                # Typically the database failing while recording: the row keeps its lease and is
                # fetched again after it (the file, if written, is simply written again).
                log.exception("attachment %s: fetch or record failed; retried after the lease", row.id)

    async def _attempt(self, row: Claimed, stamp: Callable[[], datetime]) -> None:
        media_settings = self._settings.media
        try:
            media = await self._client.media_get(
                row.media_id, max_bytes=media_settings.max_bytes, timeout_s=media_settings.download_timeout_s
            )
        except WeComApiError as exc:
            # 40007: unknown or past its 3 days, asking again cannot help. A failed gettoken
            # (ApiTokenError) or any other errcode (-1 system busy, 830002 too large) is retried.
            if not isinstance(exc, ApiTokenError) and exc.result.errcode == MEDIA_EXPIRED:
                await self._expired(row, f"{exc}: WeCom no longer has this media", stamp())
            else:
                await self._failed(row, str(exc), stamp())
            return
        except (ApiNetworkError, MediaTooLargeError) as exc:
            # A larger [media] max_bytes set meanwhile lets a later retry through.
            await self._failed(row, str(exc), stamp())
            return
        try:
            stored = await asyncio.to_thread(self._write, row, media)
        except OSError as exc:
            log.exception("attachment %s: could not write the file under %s", row.id, self.root)
            await self._failed(row, f"writing the file failed: {type(exc).__name__}: {exc.strerror or exc}", stamp())
            return
        await self._stored(row, media, stored, stamp())

    # ------------------------------------------------------------------ the file

    def _write(self, row: Claimed, media: Media) -> StoredFile:
        """Write the bytes atomically (temporary file in the same directory, fsync, rename, fsync of
        the directory); a failure leaves no partial file behind. Runs in a worker thread."""
        digest = hashlib.sha256(media.data).hexdigest()
        rel = relative_path(row.id, row.received_at, digest, media.content_type)
        root = self.root
        target = (root / rel).resolve()
        if not target.is_relative_to(root):  # cannot happen (no user input in `rel`); checked anyway
            raise OSError(f"refusing to write outside {root}: {rel}")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(media.data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(target.parent)
        return StoredFile(path=str(rel), size_bytes=len(media.data), sha256=digest)

    def _discard(self, stored: StoredFile) -> None:
        with contextlib.suppress(OSError):
            (self.root / stored.path).unlink()

    # ------------------------------------------------------------------ database

    async def _stored(self, row: Claimed, media: Media, stored: StoredFile, now: datetime) -> None:
        a = Attachment
        async with self._db.transaction() as session:
            # Recorded even if the lease ran out meanwhile: the file is there, whoever else fetched it.
            # A file name the handler took from the message beats WeCom's ("MEDIA_ID.jpg" for images).
            result = await session.execute(
                update(a)
                .where(a.id == row.id, a.status.in_(DUE))
                .values(
                    status="stored", path=stored.path, size_bytes=stored.size_bytes, sha256=stored.sha256,
                    content_type=media.content_type or None,
                    file_name=func.coalesce(a.file_name, display_name(media.file_name)),
                    stored_at=now, attempts=row.attempts + 1, last_error=None,
                ),
                execution_options={"synchronize_session": False},
            )  # fmt: skip
            recorded = bool(result.rowcount)  # type: ignore[attr-defined]
            # Read after the update (which waits for a transaction linking this row on PostgreSQL): the
            # rep may have picked the key action while the file was downloading.
            linked = await session.execute(select(a.path, a.key_action_id).where(a.id == row.id))
            current_path, key_action_id = linked.one()
            if recorded and key_action_id is not None:
                await self._complete_key_action(session, key_action_id, row, stored.path)
        if not recorded:
            log.warning("attachment %s: already settled by another fetch; this download is not recorded", row.id)
            if current_path != stored.path:
                await asyncio.to_thread(self._discard, stored)
            return
        self._count("stored")
        log.info("attachment %s: stored %s (%s bytes)", row.id, stored.path, stored.size_bytes)

    async def _complete_key_action(self, session: AsyncSession, key_action_id: int, row: Claimed, path: str) -> None:
        """R6: the key action gets the file, unless a later attachment (by reception) already completes it.
        The same media linked by the handler before the download keeps its `attached_at` (when linked)."""
        stmt = select(KeyAction).where(KeyAction.id == key_action_id)
        action = await session.scalar(stmt.with_for_update() if self._is_pg else stmt)
        if action is None:
            return
        if action.attachment_media_id != row.media_id:
            if action.attachment_media_id is not None:
                a = Attachment
                linked = await session.scalar(
                    select(a.received_at).where(a.channel == CHANNEL, a.media_id == action.attachment_media_id)
                )
                reference = linked or action.attached_at
                if reference is not None and reference > row.received_at:
                    return
            action.attachment_media_id = row.media_id
            action.attached_at = row.received_at
        elif action.attached_at is None:
            action.attached_at = row.received_at
        action.attachment_path = path

    async def _failed(self, row: Claimed, error: str, now: datetime) -> None:
        attempts = row.attempts + 1
        delay = timedelta(seconds=self._settings.media.retry_base_s * 2 ** min(attempts - 1, 20))
        retry_at = min(now + delay, row.expires_at)  # given up at expiry, never retried past it
        if await self._settle(row, status="failed", attempts=attempts, next_attempt_at=retry_at, last_error=error):
            self._count("failed")
            log.warning("attachment %s: download failed (%s); retry at %s", row.id, error, retry_at.isoformat())

    async def _expired(self, row: Claimed, error: str, now: datetime) -> None:
        if await self._settle(row, status="expired", attempts=row.attempts + 1, next_attempt_at=now, last_error=error,
                              release_at=now):
            self._count("expired")
            log.warning("attachment %s: %s", row.id, error)

    async def _settle(self, row: Claimed, release_at: datetime | None = None, **values: Any) -> bool:
        """Record a failure, only while this run still holds the row's lease (an expiry also releases the
        key action the attachment completed, and tells the rep: store.repos.attachments.release_expired)."""
        a = Attachment
        async with self._db.transaction() as session:
            result = await session.execute(
                update(a).where(a.id == row.id, a.status.in_(DUE), a.next_attempt_at == row.lease).values(**values),
                execution_options={"synchronize_session": False},
            )
            if result.rowcount and release_at is not None:  # type: ignore[attr-defined]
                await release_expired(session, row.id, release_at, text_max_bytes=self._settings.outbox.text_max_bytes)
        if not result.rowcount:  # type: ignore[attr-defined]
            log.warning("attachment %s: lease lost before recording %s; left to its new holder", row.id, values)
            return False
        return True

    def _count(self, outcome: str) -> None:
        self._metrics.inc("salesbot_media_fetch_total", outcome=outcome)


# ---------------------------------------------------------------------- pure helpers


def relative_path(attachment_id: int, received_at: datetime, sha256: str, content_type: str) -> PurePosixPath:
    """YYYY/MM/<id>-<sha256[:16]><ext>: month of receipt (Asia/Shanghai), extension from the content
    type. Nothing in it comes from the sender."""
    local = received_at.astimezone(SHANGHAI)
    return PurePosixPath(f"{local:%Y}", f"{local:%m}", f"{attachment_id}-{sha256[:16]}{extension(content_type)}")


def extension(content_type: str) -> str:
    """'image/jpeg' -> '.jpg', ...; an unknown or missing type -> '.bin'."""
    return EXTENSIONS.get(content_type.split(";", 1)[0].strip().lower(), DEFAULT_EXTENSION)


def display_name(raw: str | None) -> str | None:
    """The sender's file name made safe to show: the last path component, without control or format
    characters (e.g. a right-to-left override), at most 255 characters; None when nothing is left."""
    if not raw:
        return None
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C")).strip()
    if name in {"", ".", ".."}:
        return None
    return name[:FILE_NAME_MAX]


def _fsync_dir(path: Path) -> None:
    """Make the rename durable (POSIX); a platform that cannot open directories skips it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- the job


async def run(deps: Deps, now: datetime) -> int:
    """`salesbot jobs run media-fetch`: download due attachments once (the app's loop does this
    continuously); returns the number of rows handled."""
    assert deps.media is not None
    return await deps.media.run_once(now)
