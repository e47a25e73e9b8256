"""What a handler sees: the message, the resolved user, the flow state, repositories and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import IncomingMessage, Outgoing, Reply
from bot.clock import Clock
from bot.config import Settings
from store.models import User
from store.repos.activities import ActivityRepo
from store.repos.attachments import AttachmentRepo
from store.repos.conversations import ConversationRepo
from store.repos.customers import CustomerRepo
from store.repos.pipeline import PipelineRepo
from store.repos.standups import StandupRepo
from store.repos.users import UserRepo

if TYPE_CHECKING:
    from bot.nlu.service import Nlu
    from bot.views.cache import ViewCache


@dataclass
class FlowState:
    """The user's position in a multi-turn flow; changes are saved by the unit of work."""

    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    changed: bool = False

    def set(self, flow: str, step: str, **data: Any) -> None:
        self.flow, self.step = flow, step
        self.data.update(data)
        self.changed = True

    def clear(self) -> None:
        self.flow, self.step, self.data = None, None, {}
        self.changed = True


@dataclass
class Repos:
    users: UserRepo
    conversations: ConversationRepo
    customers: CustomerRepo
    activities: ActivityRepo
    pipeline: PipelineRepo
    standups: StandupRepo
    attachments: AttachmentRepo

    @classmethod
    def for_session(cls, session: AsyncSession) -> Repos:
        return cls(
            users=UserRepo(session), conversations=ConversationRepo(session), customers=CustomerRepo(session),
            activities=ActivityRepo(session), pipeline=PipelineRepo(session), standups=StandupRepo(session),
            attachments=AttachmentRepo(session),
        )


@dataclass
class Context:
    message: IncomingMessage
    session: AsyncSession
    repos: Repos
    clock: Clock
    settings: Settings
    now: datetime
    inbox_id: int | None = None
    user: User | None = None
    state: FlowState = field(default_factory=FlowState)
    outgoing: list[Outgoing] = field(default_factory=list)
    nlu: Nlu | None = None  # language understanding (None in routers that need none, e.g. some tests)
    cache: dict[str, Any] = field(default_factory=dict)  # per-message memo (the parsed intent)
    views: ViewCache | None = None  # R20: the process's view cache
    read_only: bool = False  # set by a handler that only reads: its commit does not clear the view cache

    @property
    def source_ref(self) -> str:
        """This message's platform identity, for rows that must be written once per message."""
        return f"{self.message.channel}:{self.message.dedup_key}"

    def reply(self, reply: Reply) -> None:
        """Queue a reply to the sender (written to the outbox by the unit of work)."""
        self.outgoing.append(Outgoing(self.message.sender, reply))

    def send(self, recipient: str, reply: Reply) -> None:
        """Queue a message to someone else (e.g. a manager)."""
        self.outgoing.append(Outgoing(recipient, reply))
