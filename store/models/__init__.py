"""SQLAlchemy 2 models: the whole schema of salesbot, one module per area (every model is imported here, so
`from store.models import X` and the mapper registry see them all). Times are timezone-aware UTC
(store.types.UTCDateTime); money is Decimal (Numeric(14, 2)). The schema changes through Alembic migrations.
"""

from store.models.base import Base, BigId, Money
from store.models.funnel import (
    Activity,
    Attachment,
    Customer,
    CustomerAlias,
    FollowUpTask,
    KeyAction,
    Lead,
    Opportunity,
    OwnershipConflict,
    StageMove,
    StandupAnswer,
)
from store.models.messaging import ConversationState, InboxMessage, OutboxMessage
from store.models.money import BonusFreeze, Contract, Payment, RebateChange
from store.models.org import OrgUnit, User
from store.models.rules import ActivityAttachment, AuditLog, Escalation, Exemption, Notice, SweepPeriod, WeeklyScore

__all__ = [
    "Activity",
    "ActivityAttachment",
    "Attachment",
    "AuditLog",
    "Base",
    "BigId",
    "BonusFreeze",
    "Contract",
    "ConversationState",
    "Customer",
    "CustomerAlias",
    "Escalation",
    "Exemption",
    "FollowUpTask",
    "InboxMessage",
    "KeyAction",
    "Lead",
    "Money",
    "Notice",
    "Opportunity",
    "OrgUnit",
    "OutboxMessage",
    "OwnershipConflict",
    "Payment",
    "RebateChange",
    "StageMove",
    "StandupAnswer",
    "SweepPeriod",
    "User",
    "WeeklyScore",
]
