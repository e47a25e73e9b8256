"""Checks of values beyond their types (bot/config.py builds the sections, this says what is wrong with them):
every failure is a ConfigError naming the key, so start-up stops with a clear message."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from bot.config_defaults import ENV_OVERRIDES

if TYPE_CHECKING:
    from bot.config import FunnelSettings, RulesSettings, Settings


class ConfigError(ValueError):
    """A configuration key is missing, unknown or invalid; the message names it."""


def _positive(section: str, obj: Any, *names: str) -> None:
    for key in names:
        if getattr(obj, key) <= 0:
            raise ConfigError(f"[{section}] {key}: must be positive, got {getattr(obj, key)!r}")


def validate(s: Settings, *, require_wecom: bool = True) -> None:
    """Check values beyond their types; raises ConfigError naming the key."""
    if not (1 <= s.server.port <= 65535):
        raise ConfigError(f"[server] port: must be 1..65535, got {s.server.port}")
    _positive("server", s.server, "max_body_bytes")
    if not s.database.url or "://" not in s.database.url:
        raise ConfigError(f"[database] url: not a database URL: {s.database.url!r}")
    driver = s.database.url.split("://", 1)[0]
    if driver not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
        raise ConfigError(
            f"[database] url: driver {driver!r} not supported (use sqlite+aiosqlite or postgresql+asyncpg)"
        )
    if require_wecom:
        w = s.wecom
        for key in ("corp_id", "secret", "token", "encoding_aes_key"):
            if not getattr(w, key):
                env = next(e for e, (sec, k) in ENV_OVERRIDES.items() if (sec, k) == ("wecom", key))
                raise ConfigError(f"[wecom] {key}: missing (set it in the file or in ${env})")
        if w.agent_id <= 0:
            raise ConfigError("[wecom] agent_id: missing or not a positive integer")
        if len(w.encoding_aes_key) != 43:
            raise ConfigError("[wecom] encoding_aes_key: must be exactly 43 characters")
        try:
            aes_key = base64.b64decode(w.encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("[wecom] encoding_aes_key: not valid base64") from None
        if len(aes_key) != 32:
            raise ConfigError("[wecom] encoding_aes_key: must decode to 32 bytes")
        if not w.api_base.startswith(("http://", "https://")):
            raise ConfigError(f"[wecom] api_base: must be an http(s) URL, got {w.api_base!r}")
    if not s.api.token and require_wecom:
        raise ConfigError("[api] token: missing (set it in the file or in $SALESBOT_API_TOKEN)")
    if s.api.token and len(s.api.token) < 16:
        raise ConfigError("[api] token: must be at least 16 characters")
    _positive(
        "outbox", s.outbox, "per_recipient_per_minute", "per_recipient_per_hour", "max_attempts", "lease_s",
        "batch_size", "send_concurrency", "poll_interval_s",
    )  # fmt: skip
    if s.outbox.per_recipient_per_hour > 1000:
        raise ConfigError(
            "[outbox] per_recipient_per_hour: WeCom silently drops past 1000 an hour; use ≤ 1000"
        )
    if s.outbox.lease_s <= 3 * s.wecom.request_timeout_s:
        # One delivery can take three requests (gettoken, send, resend after a token refresh): a lease
        # shorter than that could expire mid-send and let another sender send the row too.
        raise ConfigError(
            f"[outbox] lease_s: must exceed 3 × [wecom] request_timeout_s ({3 * s.wecom.request_timeout_s:g})"
        )
    if s.outbox.per_recipient_per_minute > 30:
        raise ConfigError("[outbox] per_recipient_per_minute: WeCom silently drops past 30 a minute; use ≤ 30")
    if not (512 <= s.outbox.text_max_bytes <= 2048):
        raise ConfigError("[outbox] text_max_bytes: must be 512..2048 (WeCom truncates past 2048 bytes)")
    if not (120 <= s.wecom.duplicate_check_interval_s <= 14400):
        # ≥ 120 so each recipient's rows get distinct intervals (identical replies are not swallowed);
        # ≤ 14400 is WeCom's maximum.
        raise ConfigError("[wecom] duplicate_check_interval_s: must be 120..14400 seconds")
    _positive("inbox", s.inbox, "group_commit_max_batch", "max_attempts", "retry_base_s")
    if s.inbox.group_commit_max_batch > 1000:
        # 14 bound values a row: past ~2,300 rows one INSERT exceeds SQLite's 32,766 parameters.
        raise ConfigError("[inbox] group_commit_max_batch: must be 1..1000")
    if s.inbox.retry_max_s < s.inbox.retry_base_s:
        raise ConfigError("[inbox] retry_max_s: must be ≥ retry_base_s")
    if s.outbox.rate_limit_pause_s < 60:
        raise ConfigError("[outbox] rate_limit_pause_s: WeCom lifts 45009/45033 after about a minute; use ≥ 60")
    if not (0 < s.outbox.backoff_base_s <= s.outbox.backoff_max_s):
        raise ConfigError("[outbox] backoff_base_s: must be positive and ≤ backoff_max_s")
    _positive("scheduler", s.scheduler, "inbox_recovery_s", "outbox_interval_s")
    _positive("database", s.database, "sqlite_busy_timeout_ms")
    if s.database.pool_size < 2:
        raise ConfigError("[database] pool_size: must be ≥ 2 (one connection stays free for the inbox writer)")
    if not (0 <= s.org.max_deactivate_share <= 1):
        raise ConfigError("[org] max_deactivate_share: must be between 0 and 1")
    _positive("conversation", s.conversation, "state_ttl_minutes")
    if len(s.funnel.stages) < 2 or len(set(s.funnel.stages)) != len(s.funnel.stages):
        raise ConfigError("[funnel] stages: need at least two distinct stage names")
    _validate_funnel(s.funnel)
    _validate_capture(s)
    _validate_hours_and_rules(s)
    _validate_metrics(s)
    hh, _, mm = s.org.sync_at.partition(":")
    if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(f"[org] sync_at: expected HH:MM, got {s.org.sync_at!r}")


def _validate_funnel(f: FunnelSettings) -> None:
    for stage, actions in f.gates.items():
        if stage not in f.stages:
            raise ConfigError(f"[funnel] gates.{stage}: not one of [funnel] stages")
        if any(not a.strip() or len(a) > 64 for a in actions):
            raise ConfigError(f"[funnel] gates.{stage}: key action names must be 1..64 characters")
    for word, stage in f.aliases.items():
        if stage not in f.stages:
            raise ConfigError(f"[funnel] aliases.{word}: {stage!r} is not one of [funnel] stages")


def _validate_hours_and_rules(s: Settings) -> None:
    from datetime import date, time

    h = s.hours
    try:
        start, end = time.fromisoformat(h.start), time.fromisoformat(h.end)
    except ValueError:
        raise ConfigError(f"[hours] start/end: expected HH:MM, got {h.start!r}/{h.end!r}") from None
    if start >= end:
        raise ConfigError("[hours] end: must be after start")
    if not h.weekdays or any(not 1 <= d <= 7 for d in h.weekdays):
        raise ConfigError("[hours] weekdays: ISO weekdays 1 (Monday) … 7 (Sunday), at least one")
    for key in ("holidays", "workdays"):
        for value in getattr(h, key):
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"[hours] {key}: expected YYYY-MM-DD, got {value!r}") from None
    r = s.rules
    _positive("rules", r, "sweep_interval_s", "lead_assign_hours", "stale_hours", "stale_nudges_before_manager",
              "stage_limit_hours", "snooze_hours", "digest_max_lines")
    if r.silent_factor <= 1:
        raise ConfigError("[rules] silent_factor: must be > 1 (silent comes after the stage limit)")
    for stage, hours in r.stage_limits.items():
        if stage not in s.funnel.stages:
            raise ConfigError(f"[rules] stage_limits.{stage}: not one of [funnel] stages")
        if hours <= 0:
            raise ConfigError(f"[rules] stage_limits.{stage}: must be positive")
    _validate_standup(r)


def _validate_standup(r: RulesSettings) -> None:
    """R16: the stand-up's weekday and its two times (the table after the prompt, the same day)."""
    from datetime import time

    if not 1 <= r.standup_weekday <= 7:
        raise ConfigError("[rules] standup_weekday: ISO weekday 1 (Monday) … 7 (Sunday)")
    try:
        prompt_at, table_at = time.fromisoformat(r.standup_prompt_at), time.fromisoformat(r.standup_table_at)
    except ValueError:
        raise ConfigError(f"[rules] standup_prompt_at/standup_table_at: expected HH:MM, got "
                          f"{r.standup_prompt_at!r}/{r.standup_table_at!r}") from None
    if table_at <= prompt_at:
        raise ConfigError("[rules] standup_table_at: must be after standup_prompt_at")


def _validate_metrics(s: Settings) -> None:
    """R2, R7, R12, R13 thresholds."""
    _positive("rules", s.rules, "receivable_days")
    m = s.metrics
    _positive("metrics", m, "golden_hours", "transition_weeks", "depth_threshold")
    for key in ("golden_rate", "transition_rate"):
        if not 0 < getattr(m, key) <= 1:
            raise ConfigError(f"[metrics] {key}: a share, must be in (0, 1], got {getattr(m, key)!r}")
    for key in ("golden_review_at", "weekly_at"):
        value = getattr(m, key)
        h2, _, m2 = value.partition(":")
        if not (h2.isdigit() and m2.isdigit() and int(h2) < 24 and int(m2) < 60):
            raise ConfigError(f"[metrics] {key}: expected HH:MM, got {value!r}")
    hh, _, mm = m.golden_review_at.partition(":")
    if not (hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60):
        raise ConfigError(f"[metrics] golden_review_at: expected HH:MM, got {m.golden_review_at!r}")
    fields_ = ("wechat", "note_chars", "docs")
    if set(m.depth_weights) != set(fields_) or any(w < 0 for w in m.depth_weights.values()):
        raise ConfigError("[metrics] depth_weights: needs wechat, note_chars and docs, none negative")
    for industry, base in m.depth_baselines.items():
        if set(base) != set(fields_) or any(v < 0 for v in base.values()):
            raise ConfigError(f"[metrics] depth_baselines.{industry}: needs wechat, note_chars and docs, none negative")
        if sum(base[k] * m.depth_weights[k] for k in fields_) <= 0:
            raise ConfigError(f"[metrics] depth_baselines.{industry}: the weighted baseline must be positive")
    for industry, pack in m.talk_tracks.items():
        if not pack.strip():
            raise ConfigError(f"[metrics] talk_tracks.{industry}: must not be empty")


def _validate_capture(s: Settings) -> None:
    c = s.capture
    _positive("capture", c, "location_max_age_minutes", "open_visit_max_hours", "max_visit_minutes",
              "max_candidates", "note_keywords", "max_text_chars", "conflict_window_days", "recent_customer_hours")
    if not (0 < c.customer_match_threshold <= 1):
        raise ConfigError("[capture] customer_match_threshold: must be in (0, 1]")
    if not (0 <= c.customer_ambiguity_margin < 1):
        raise ConfigError("[capture] customer_ambiguity_margin: must be in [0, 1)")
    if c.conflict_min_reps < 2:
        raise ConfigError("[capture] conflict_min_reps: must be ≥ 2")
    _positive("media", s.media, "max_age_days", "max_bytes", "retry_base_s", "fetch_interval_s", "download_timeout_s")
    if not s.media.dir.strip():
        raise ConfigError("[media] dir: must not be empty")
