"""Settings: TOML file + environment overrides -> frozen, typed dataclasses.

Every key is documented in config.example.toml with its default and the rule it serves.
Any bad, unknown or missing key raises ConfigError naming it, so start-up stops with a clear message.
"""

from __future__ import annotations

import base64
import binascii
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from bot.config_defaults import (
    DEFAULT_DEPTH_BASELINES,
    DEFAULT_GATES,
    DEFAULT_STAGE_ALIASES,
    DEFAULT_STAGES,
    DEFAULT_TALK_TRACKS,
)
from bot.rules.rebate.policy import RebateSettings, parse_rebate
from bot.rules.score import ScoreSettings, parse_score_settings

# Secrets may come from the environment instead of the file (checked after the file is read).
ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "SALESBOT_DATABASE_URL": ("database", "url"),
    "SALESBOT_WECOM_CORP_ID": ("wecom", "corp_id"),
    "SALESBOT_WECOM_AGENT_ID": ("wecom", "agent_id"),
    "SALESBOT_WECOM_SECRET": ("wecom", "secret"),
    "SALESBOT_WECOM_TOKEN": ("wecom", "token"),
    "SALESBOT_WECOM_ENCODING_AES_KEY": ("wecom", "encoding_aes_key"),
    "SALESBOT_WECOM_API_BASE": ("wecom", "api_base"),
    "SALESBOT_API_TOKEN": ("api", "token"),
}


class ConfigError(ValueError):
    """A configuration key is missing, unknown or invalid; the message names it."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 65536
    shutdown_grace_s: float = 5.0


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite+aiosqlite:///salesbot.db"
    sqlite_busy_timeout_ms: int = 5000
    pool_size: int = 5
    auto_upgrade: bool = True


@dataclass(frozen=True)
class WeComSettings:
    corp_id: str = ""
    agent_id: int = 0
    secret: str = ""
    token: str = ""
    encoding_aes_key: str = ""
    api_base: str = "https://qyapi.weixin.qq.com"
    request_timeout_s: float = 10.0
    token_refresh_margin_s: int = 300
    duplicate_check_interval_s: int = 3600


@dataclass(frozen=True)
class InboxSettings:
    group_commit_max_batch: int = 256
    retry_base_s: int = 30
    retry_max_s: int = 3600
    max_attempts: int = 8


@dataclass(frozen=True)
class OutboxSettings:
    per_recipient_per_minute: int = 20
    per_recipient_per_hour: int = 900
    max_attempts: int = 12
    busy_retries: int = 3
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0
    rate_limit_pause_s: int = 60
    lease_s: int = 60
    batch_size: int = 100
    poll_interval_s: float = 1.0
    text_max_bytes: int = 2048
    send_concurrency: int = 4  # recipients served in parallel by one sender (rows of one stay in order)


@dataclass(frozen=True)
class ConversationSettings:
    state_ttl_minutes: int = 30


@dataclass(frozen=True)
class ApiSettings:
    token: str = ""


@dataclass(frozen=True)
class OrgSettings:
    finance: tuple[str, ...] = ()
    delivery: tuple[str, ...] = ()
    sales_ops: tuple[str, ...] = ()
    root_department_id: int = 1
    sync_at: str = "02:30"
    max_deactivate_share: float = 0.2


@dataclass(frozen=True)
class FunnelSettings:
    stages: tuple[str, ...] = DEFAULT_STAGES
    gates: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GATES))
    aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_STAGE_ALIASES))


@dataclass(frozen=True)
class CaptureSettings:
    """Conversational capture (R14 check-ins, R15 notes, R16 stand-ups, R17 conflicts)."""

    location_max_age_minutes: int = 120
    open_visit_max_hours: int = 12
    max_visit_minutes: int = 720
    customer_match_threshold: float = 0.6
    customer_ambiguity_margin: float = 0.08
    max_candidates: int = 5
    note_keywords: int = 8
    max_text_chars: int = 5000
    conflict_window_days: int = 30
    conflict_min_reps: int = 2
    recent_customer_hours: int = 3


@dataclass(frozen=True)
class MediaSettings:
    """Attachments (R6): where downloaded media go and how long the platform keeps them."""

    dir: str = "media"
    max_age_days: int = 3
    max_bytes: int = 20 * 1024 * 1024
    retry_base_s: int = 60
    fetch_interval_s: int = 30
    download_timeout_s: float = 120.0


@dataclass(frozen=True)
class NluSettings:
    """jieba: the dictionary cache and an optional extra user dictionary (R14, R15)."""

    cache_dir: str = ""
    user_dict: str = ""


@dataclass(frozen=True)
class HoursSettings:
    """R18: when people may be nudged (Asia/Shanghai)."""

    start: str = "09:00"
    end: str = "20:00"
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5, 6)  # ISO weekdays: Monday … Saturday
    holidays: tuple[str, ...] = ()
    workdays: tuple[str, ...] = ()


@dataclass(frozen=True)
class RulesSettings:
    """Thresholds and recipients of the time-based rules (R1–R5, R7, R16, R17)."""

    sweep_interval_s: int = 60
    lead_assign_hours: float = 2.0
    stale_hours: float = 72.0
    stale_nudges_before_manager: int = 3
    stage_limit_hours: float = 72.0
    stage_limits: Mapping[str, float] = field(default_factory=lambda: {"方案呈现": 72.0})
    silent_factor: float = 3.0
    snooze_hours: float = 24.0
    digest_max_lines: int = 10
    standup_weekday: int = 1  # R16: ISO weekday of the stand-up (1 = Monday)
    standup_prompt_at: str = "09:00"  # R16: every rep is asked then (Asia/Shanghai) …
    standup_table_at: str = "10:00"  # R16: … and the team table goes to the manager then (or once all answered)
    receivable_days: int = 60  # R7: unpaid this many days after signing → tri-party work order + bonus freeze

    def stage_limit(self, stage: str) -> timedelta:
        """R4/R5/R12: how long a deal may stay in `stage` (its own limit, else the default)."""
        return timedelta(hours=self.stage_limits.get(stage, self.stage_limit_hours))




@dataclass(frozen=True)
class MetricsSettings:
    """The shared measures and the sweeps that fire on them (R2, R12, R13); Asia/Shanghai days and weeks."""

    golden_hours: float = 4.0
    golden_rate: float = 0.85
    golden_review_at: str = "09:30"
    weekly_at: str = "06:00"
    transition_rate: float = 0.65
    transition_weeks: int = 2
    depth_threshold: float = 0.8
    depth_weights: Mapping[str, float] = field(
        default_factory=lambda: {"wechat": 0.3, "note_chars": 0.4, "docs": 0.3})
    depth_baselines: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_DEPTH_BASELINES.items()})
    talk_tracks: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TALK_TRACKS))


@dataclass(frozen=True)
class SchedulerSettings:
    enabled: bool = True
    inbox_recovery_s: int = 60
    outbox_interval_s: int = 5


@dataclass(frozen=True)
class ViewsSettings:
    """R20 manager views (and 我的返点 / 我的过程分): how stale a cached answer may be."""

    max_staleness_s: int = 180


# Sections richer than flat keys (nested tables, formulas): parsed by their own pure module, whose errors
# name the key path; `load` adds the file's line.
CUSTOM_SECTIONS: dict[str, Callable[[Any], Any]] = {
    "rebate": parse_rebate,
    "score": lambda raw: parse_score_settings(raw or {}),
}


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    wecom: WeComSettings = field(default_factory=WeComSettings)
    inbox: InboxSettings = field(default_factory=InboxSettings)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    org: OrgSettings = field(default_factory=OrgSettings)
    funnel: FunnelSettings = field(default_factory=FunnelSettings)
    capture: CaptureSettings = field(default_factory=CaptureSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    nlu: NluSettings = field(default_factory=NluSettings)
    hours: HoursSettings = field(default_factory=HoursSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)
    views: ViewsSettings = field(default_factory=ViewsSettings)
    rebate: RebateSettings = field(default_factory=lambda: parse_rebate(None))
    score: ScoreSettings = field(default_factory=lambda: parse_score_settings({}))

    def with_overrides(self, **sections: Mapping[str, Any]) -> Settings:
        """A copy with some keys replaced (tests and the demo use it)."""
        changed = {name: replace(getattr(self, name), **dict(values)) for name, values in sections.items()}
        result = replace(self, **changed)
        validate(result)
        return result


T = TypeVar("T")


def _coerce(section: str, key: str, typ: Any, value: Any) -> Any:
    where = f"[{section}] {key}"
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0"}:
            return value.lower() in {"true", "1"}
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if typ is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if typ is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if get_origin(typ) is Mapping:
        _key_type, value_type = get_args(typ)
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {str(k): _coerce(section, f"{key}.{k}", value_type, v) for k, v in value.items()}
    if get_origin(typ) is tuple:
        (inner, *_rest) = get_args(typ)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(section, key, inner, v) for v in value)
    raise ConfigError(f"{where}: unsupported type")  # pragma: no cover - programming error


def _build_section(name: str, cls: type[T], raw: Any) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}]: expected a table")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in known:
            raise ConfigError(f"[{name}] {key}: unknown key (known: {', '.join(sorted(known))})")
    values = {key: _coerce(name, key, hints[key], value) for key, value in raw.items()}
    return cls(**values)


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


def from_mapping(
    raw: Mapping[str, Any], env: Mapping[str, str] | None = None, *, require_wecom: bool = True
) -> Settings:
    """Build settings from a parsed TOML mapping plus environment overrides."""
    data: dict[str, dict[str, Any]] = {}
    section_types = {f.name: f.type for f in fields(Settings)}
    hints = get_type_hints(Settings)
    for name, value in raw.items():
        if name not in section_types:
            raise ConfigError(f"[{name}]: unknown section (known: {', '.join(sorted(section_types))})")
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}]: expected a table")
        data[name] = dict(value)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env and env.get(var):
            data.setdefault(section, {})[key] = env[var]
    sections: dict[str, Any] = {}
    for name, cls in hints.items():
        if name in CUSTOM_SECTIONS:
            try:
                sections[name] = CUSTOM_SECTIONS[name](data.get(name))
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            continue
        assert is_dataclass(cls)
        sections[name] = _build_section(name, cls, data.get(name, {}))  # type: ignore[arg-type]
    settings = Settings(**sections)
    validate(settings, require_wecom=require_wecom)
    return settings


def load(path: str | Path | None, env: Mapping[str, str] | None = None, *, require_wecom: bool = True) -> Settings:
    """Read a TOML file (or none: defaults + environment)."""
    raw: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    try:
        return from_mapping(raw, os.environ if env is None else env, require_wecom=require_wecom)
    except ConfigError as exc:
        line = _line_of(p.read_text(encoding="utf-8"), raw, str(exc)) if path is not None else None
        if line is None:
            raise
        raise ConfigError(f"{p}:{line}: {exc}") from None


def _line_of(text: str, raw: Mapping[str, Any], message: str) -> int | None:
    """The file line holding the value a custom section's error names ("rebate.templates.x.rules[1].when: …"):
    the key path is walked in the parsed file and the value's text looked up in the lines."""
    path = message.split(":", 1)[0].strip()
    value: Any = raw
    for part in path.replace("]", "").replace("[", ".").split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    needle = value if isinstance(value, str) else None
    if not needle:
        return None
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None
