"""R6 SOP gates: which key actions must be complete (attachment + the owner's sign-off) to enter a stage.

Moving forward across several stages needs every gate on the way; moving back needs none. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ActionState:
    """What is known about one key action of an opportunity."""

    attached: bool = False  # a file is stored for it (downloaded, not merely named)
    signed_off: bool = False
    downloading: bool = False  # a file was picked for it but is not stored yet

    @property
    def complete(self) -> bool:
        return self.attached and self.signed_off


@dataclass(frozen=True)
class Missing:
    """A key action a move still needs, and what it lacks."""

    stage: str
    name: str
    needs_attachment: bool
    needs_signoff: bool
    downloading: bool = False  # the attachment is on its way (picked, not stored yet)


def stages_entered(stages: Sequence[str], current: str, target: str) -> list[str]:
    """The stages a move from `current` to `target` enters: forward only ([] for a move back or none)."""
    if target not in stages:
        raise ValueError(f"unknown stage {target!r}")
    start = stages.index(current) if current in stages else -1
    end = stages.index(target)
    return list(stages[start + 1 : end + 1]) if end > start else []


def next_stage(stages: Sequence[str], current: str) -> str | None:
    if current not in stages:
        return stages[0] if stages else None
    index = stages.index(current)
    return stages[index + 1] if index + 1 < len(stages) else None


def missing_for_move(
    stages: Sequence[str],
    gates: Mapping[str, Sequence[str]],
    current: str,
    target: str,
    actions: Mapping[str, ActionState],
) -> list[Missing]:
    """R6: every key action a move from `current` to `target` still lacks, in funnel order."""
    missing: list[Missing] = []
    for stage in stages_entered(stages, current, target):
        for name in gates.get(stage, ()):
            state = actions.get(name, ActionState())
            if not state.complete:
                missing.append(Missing(stage, name, not state.attached, not state.signed_off,
                                       downloading=state.downloading and not state.attached))
    return missing


def gate_of(gates: Mapping[str, Sequence[str]], name: str) -> str | None:
    """The stage whose gate lists the key action `name` (the first, in configuration order)."""
    for stage, names in gates.items():
        if name in names:
            return stage
    return None
