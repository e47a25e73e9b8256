"""A small Prometheus text-format registry (counters and gauges), one per app, no globals."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

Labels = tuple[tuple[str, str], ...]
GaugeReader = Callable[[], Awaitable[dict[Labels, float]]]

HELP: dict[str, str] = {
    "salesbot_inbound_total": "Verified inbound callbacks stored in the inbox, by channel and type.",
    "salesbot_inbound_duplicates_total": "Inbound callbacks that were duplicates of a stored one.",
    "salesbot_inbound_rejected_total": "Inbound callbacks rejected before storage, by reason.",
    "salesbot_processing_failures_total": "Inbox rows whose processing raised, by channel.",
    "salesbot_processed_total": "Inbox rows processed to completion, by channel.",
    "salesbot_outbox_sends_total": "Outbound API calls by channel, kind and platform errcode.",
    "salesbot_outbox_dead_total": "Outbox rows given up (dead letters), by channel and errcode.",
    "salesbot_outbox_backlog": "Outbox rows not yet delivered.",
    "salesbot_outbox_oldest_age_seconds": "Age of the oldest undelivered outbox row.",
    "salesbot_inbox_backlog": "Inbox rows not yet processed.",
    "salesbot_job_runs_total": "Scheduled job runs by job and outcome.",
    "salesbot_media_fetch_total": "Attachment downloads (R6) by outcome: stored, failed (retried) or expired.",
    "salesbot_wecom_api_requests_total": (
        "WeCom API calls by endpoint and outcome (the platform errcode, or network for no usable answer)."
    ),
    "salesbot_api_requests_total": "HTTP API (/api/v1) requests by route name and HTTP status.",
}


class Metrics:
    """Counters live in memory; gauges are read from the database when /metrics is scraped."""

    def __init__(self) -> None:
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._gauges: dict[str, GaugeReader] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str | int) -> None:
        key = tuple(sorted((k, v if isinstance(v, str) else str(v)) for k, v in labels.items()))
        self._counters[name][key] += amount

    def value(self, name: str, **labels: str | int) -> float:
        key = tuple(sorted((k, str(v)) for k, v in labels.items()))
        return self._counters.get(name, {}).get(key, 0.0)

    def total(self, name: str) -> float:
        return sum(self._counters.get(name, {}).values())

    def gauge(self, name: str, reader: GaugeReader) -> None:
        self._gauges[name] = reader

    async def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self._counters):
            lines += _family(name, "counter", self._counters[name])
        for name in sorted(self._gauges):
            lines += _family(name, "gauge", await self._gauges[name]())
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, samples: dict[Labels, float]) -> list[str]:
    out = [f"# HELP {name} {HELP.get(name, name)}", f"# TYPE {name} {kind}"]
    for labels, value in sorted(samples.items()):
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
        out.append(f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}")
    return out
