"""Request and response bodies of the dispatch API, and the workspace settings it stores; one module
per resource, every name re-exported here."""

from services.dispatch.schemas.crm import (
    CrmAttemptOut,
    CrmCallOut,
    CrmConnectorIn,
    CrmConnectorOut,
    CrmConnectorPatch,
    CrmCredentialsIn,
)
from services.dispatch.schemas.invitations import (
    FunnelOut,
    FunnelStep,
    InvitationOut,
    InvitationStatus,
    ReminderOut,
)
from services.dispatch.schemas.settings import (
    Branding,
    ChannelConfigIn,
    ChannelConfigOut,
    QuietHours,
    Reminders,
    WorkspaceConfig,
)
from services.dispatch.schemas.templates import (
    PreviewIn,
    PreviewOut,
    TemplateIn,
    TemplateOut,
    TemplateWarningOut,
)
from services.dispatch.schemas.webhooks import (
    AttemptOut,
    DeliveryOut,
    ReplayRangeIn,
    ReplayRangeOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
)

__all__ = [
    "AttemptOut",
    "Branding",
    "ChannelConfigIn",
    "ChannelConfigOut",
    "CrmAttemptOut",
    "CrmCallOut",
    "CrmConnectorIn",
    "CrmConnectorOut",
    "CrmConnectorPatch",
    "CrmCredentialsIn",
    "DeliveryOut",
    "FunnelOut",
    "FunnelStep",
    "InvitationOut",
    "InvitationStatus",
    "PreviewIn",
    "PreviewOut",
    "QuietHours",
    "ReminderOut",
    "Reminders",
    "ReplayRangeIn",
    "ReplayRangeOut",
    "SubscriptionIn",
    "SubscriptionOut",
    "SubscriptionPatch",
    "TemplateIn",
    "TemplateOut",
    "TemplateWarningOut",
    "WorkspaceConfig",
]
