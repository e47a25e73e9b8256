"""Settings: TOML file + environment overrides -> frozen, typed dataclasses.

Every key is documented in config.example.toml with its default and the rule it serves.
Any bad, unknown or missing key raises ConfigError naming it, so start-up stops with a clear message.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from bot.config_checks import ConfigError as ConfigError
from bot.config_checks import validate
from bot.config_defaults import (
    DEFAULT_DEPTH_BASELINES,
    DEFAULT_GATES,
    DEFAULT_STAGE_ALIASES,
    DEFAULT_STAGES,
    DEFAULT_TALK_TRACKS,
    ENV_OVERRIDES,
)
from bot.rules.rebate.policy import RebateSettings, parse_rebate
from bot.rules.score import ScoreSettings, parse_score_settings


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
