"""An outbox row -> the WeCom API request (endpoint and body), and the row's duplicate-check interval.

Why `duplicate_check_interval` differs between rows
---------------------------------------------------
Every message/send carries `enable_duplicate_check=1`: WeCom then does not deliver again "the same
content (the request JSON)" within `duplicate_check_interval` seconds (docs 90236; at most 14400). That
is what makes a resend of one row harmless: after a crash between sending and recording, or a lost
answer, the row is sent again byte for byte (canonical encoding, see `encode_body`) and the member sees
it once.

It would also swallow a second, *different* row with the same content to the same member ("好的，已记录"
twice in ten minutes): same JSON, dropped. So each row's JSON must be its own, and all attempts of one
row must stay identical, without changing what the member sees. The one documented field that can vary
without touching the message is `duplicate_check_interval` itself (`safe` and `enable_id_trans` change
what is shown, `toparty`/`totag` who gets it, an invisible character changes the text, and an
undocumented extra key may be rejected or left out of the comparison). Hence:

* A row gets its interval at its first claim, stored in `outbox.duplicate_check_interval_s`; every
  later attempt reuses the stored value (so a resend stays identical across restarts and config
  changes).
* The rows to one recipient take the values base, base-1, ..., base-spread+1 in turn, then start over
  (`spread = min(base // 2, 1800)`, base = `[wecom] duplicate_check_interval_s`). Two rows to the same
  member get the same value only if they are `spread` or more apart in that member's sequence, so a
  swallowed reply needs (besides equal content) more than `spread` rows to one member first claimed
  within one interval (<= base). At the default base of 3600 s that
  is 1800 rows to one person in an hour: twice the sender's per-recipient throttle (900/h) and above
  WeCom's own 1000/h drop limit. Rows to different members never collide (`touser` is in the JSON).
* Varying by row id alone (stateless) was the alternative: ids are shared by all recipients, so with
  more than `spread` rows per interval in total, two rows to one member could meet on the same value.
* Every interval stays >= base - spread + 1 >= base / 2, and a resend of a row within that window is
  still dropped. Crash resends come after `[outbox] lease_s` (60 s); retries after backoffs capped at
  `backoff_max_s`: all twelve attempts, timeouts included, take at most ~26 minutes at the defaults,
  inside the 1801 s floor at base 3600. Only pauses (frequency limit, gettoken: they spend no
  attempt) or a full per-recipient throttle can stretch a row's retries past that; the old default
  of 600 s did not even cover the backoffs.
"""

from __future__ import annotations

from typing import Any, Literal

from bot.config import WeComSettings

Endpoint = Literal["send", "update_card"]
MAX_SPREAD = 1800


class InvalidRowError(ValueError):
    """An outbox row this sender cannot turn into a request (unknown kind, malformed payload)."""


def uses_duplicate_check(kind: str) -> bool:
    """Whether the row goes to message/send (and so needs a duplicate-check interval)."""
    return kind != "update_card"


def duplicate_check_spread(base: int) -> int:
    """How many distinct intervals the rows to one recipient cycle through."""
    return max(1, min(base // 2, MAX_SPREAD))


def next_duplicate_check_interval(previous: int | None, base: int) -> int:
    """The interval for a recipient's next row, given the one its latest row got (None: no row yet).

    base, base-1, ..., base-spread+1, base, ...; a previous value outside that range (base changed in
    the configuration) starts over at base."""
    low = base - duplicate_check_spread(base) + 1
    if previous is None or not low < previous <= base:
        return base
    return previous - 1


def build_request(
    kind: str,
    recipient: str,
    payload: dict[str, Any],
    wecom: WeComSettings,
    *,
    duplicate_check_interval: int | None = None,
) -> tuple[Endpoint, dict[str, Any]]:
    """The endpoint ("send" or "update_card") and body for one row: a pure function of the row (its
    stored `duplicate_check_interval`; None means the configured base) and the settings, so every
    attempt of a row sends the same bytes (the client encodes canonically)."""
    if kind == "update_card":
        code = payload.get("response_code")
        userids = payload.get("userids") or [recipient]
        if not isinstance(code, str) or not code:
            raise InvalidRowError("update_card without response_code")
        body: dict[str, Any] = {
            "userids": list(userids),
            "agentid": wecom.agent_id,
            "response_code": code,
        }
        if isinstance(payload.get("template_card"), dict):
            body["template_card"] = payload["template_card"]
        else:
            button = payload.get("button")
            body["button"] = button if isinstance(button, dict) else {"replace_name": ""}
        return "update_card", body
    if kind in {"text", "markdown"}:
        content = payload.get("content")
        if not isinstance(content, str) or not content:
            raise InvalidRowError(f"{kind} without content")
        inner: dict[str, Any] = {"content": content}
    elif kind == "template_card":
        card = payload.get("template_card")
        if not isinstance(card, dict):
            raise InvalidRowError("template_card without a card")
        inner = card
    else:
        raise InvalidRowError(f"unknown kind {kind!r}")
    interval = wecom.duplicate_check_interval_s if duplicate_check_interval is None else duplicate_check_interval
    return "send", {
        "touser": recipient,
        "msgtype": kind,
        "agentid": wecom.agent_id,
        kind: inner,
        # A resend of this row is dropped by WeCom; another row's JSON differs (module docstring).
        "enable_duplicate_check": 1,
        "duplicate_check_interval": interval,
    }
