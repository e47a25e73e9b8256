"""Config: every key documented with its default; bad or missing keys stop start-up, naming the key."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from bot.config import CUSTOM_SECTIONS, ConfigError, Settings, from_mapping, load
from tests.conftest import AES_KEY, API_TOKEN, CORP_ID, SECRET, TOKEN

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"

GOOD = {
    "wecom": {"corp_id": CORP_ID, "agent_id": 218, "secret": SECRET, "token": TOKEN, "encoding_aes_key": AES_KEY},
    "api": {"token": API_TOKEN},
}


def test_example_documents_every_key_with_its_default() -> None:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    defaults = Settings()
    for section in fields(Settings):
        assert section.name in raw, f"[{section.name}] missing from config.example.toml"
        obj = getattr(defaults, section.name)
        if section.name in CUSTOM_SECTIONS:  # parsed whole by its own module: the example is the default
            assert CUSTOM_SECTIONS[section.name](raw[section.name]) == obj, f"[{section.name}]"
            continue
        for f in fields(obj):
            assert f.name in raw[section.name], f"[{section.name}] {f.name} missing from config.example.toml"
            value = raw[section.name][f.name]
            expected = getattr(obj, f.name)
            assert _plain(value) == _plain(expected), f"[{section.name}] {f.name}"
    # and nothing undocumented: the example itself loads (wecom keys empty → allowed without wecom)
    load(EXAMPLE, env={}, require_wecom=False)


def _plain(value: object) -> object:
    """TOML lists and tables compared with tuples and mappings."""
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_every_example_key_has_a_comment() -> None:
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith("#") and not line.startswith("stages"):
            assert "#" in line, f"undocumented key line: {line}"


def test_good_config_loads() -> None:
    s = from_mapping(GOOD, env={})
    assert s.wecom.agent_id == 218 and s.wecom.api_base == "https://qyapi.weixin.qq.com"


@pytest.mark.parametrize(
    ("patch", "named"),
    [
        ({"wecom": {"corp_id": ""}}, "[wecom] corp_id"),
        ({"wecom": {"agent_id": "abc"}}, "[wecom] agent_id"),
        ({"wecom": {"encoding_aes_key": "short"}}, "[wecom] encoding_aes_key"),
        ({"wecom": {"encoding_aes_key": "!" * 43}}, "[wecom] encoding_aes_key"),
        ({"wecom": {"api_base": "ftp://x"}}, "[wecom] api_base"),
        ({"wecom": {"colour": "red"}}, "[wecom] colour"),
        ({"server": {"port": 70000}}, "[server] port"),
        ({"database": {"url": "mysql://x"}}, "[database] url"),
        ({"api": {"token": "short"}}, "[api] token"),
        ({"outbox": {"per_recipient_per_minute": 31}}, "[outbox] per_recipient_per_minute"),
        ({"nonsense": {}}, "[nonsense]"),
        ({"org": {"sync_at": "25:00"}}, "[org] sync_at"),
        ({"rules": {"standup_table_at": "08:00"}}, "[rules] standup_table_at"),  # R16: before the prompt
        ({"rules": {"standup_prompt_at": "9am"}}, "[rules] standup_prompt_at"),
        ({"rules": {"standup_weekday": 8}}, "[rules] standup_weekday"),
    ],
)
def test_bad_keys_are_named(patch: dict[str, dict[str, object]], named: str) -> None:
    raw = {k: dict(v) for k, v in GOOD.items()}
    for section, values in patch.items():
        raw.setdefault(section, {}).update(values)
    with pytest.raises(ConfigError) as exc:
        from_mapping(raw, env={})
    assert named in str(exc.value)


def test_secrets_from_environment() -> None:
    env = {
        "SALESBOT_WECOM_CORP_ID": CORP_ID,
        "SALESBOT_WECOM_AGENT_ID": "218",
        "SALESBOT_WECOM_SECRET": SECRET,
        "SALESBOT_WECOM_TOKEN": TOKEN,
        "SALESBOT_WECOM_ENCODING_AES_KEY": AES_KEY,
        "SALESBOT_API_TOKEN": API_TOKEN,
    }
    s = from_mapping({}, env=env)
    assert (s.wecom.secret, s.wecom.agent_id, s.api.token) == (SECRET, 218, API_TOKEN)


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\nport=1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad, env={})


@pytest.mark.parametrize("formula", ["amount.__class__ > 0", "__import__('os') == 1", "amount ** 2 > 1",
                                     "open('x') == 1", "amount >= 1e999"])
def test_a_hostile_rebate_formula_is_refused_with_its_line(tmp_path: Path, formula: str) -> None:
    """R8: a policy formula outside the grammar stops start-up, naming the key path and the file's line."""
    text = (
        '[rebate]\ntemplate = "mine"\n\n[rebate.templates.mine]\nlabel = "x"\nperiod = "month"\n'
        'tiers = [{ from = 0, rate = "1%" }]\n\n[[rebate.templates.mine.rules]]\nname = "坏"\n'
        f'when = "{formula}"\nrate = "1%"\n'
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(cfg, env={}, require_wecom=False)
    assert f"{cfg}:11:" in str(info.value) and "rebate.templates.mine.rules[0].when" in str(info.value)
