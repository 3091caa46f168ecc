"""What dispatch's routes, consumers and workers depend on, typed: its runtime and ``DispatchDeps``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from services.dispatch.channels import HttpChannels, SmtpPool
from services.dispatch.crm.worker import CrmWorker
from services.dispatch.handlers.workspace import WorkspaceCache
from services.dispatch.notifier import Notifier
from services.dispatch.sending.sender import InvitationSender
from services.dispatch.settings import DispatchSettings
from shared.clock import Clock
from shared.netguard import OutboundGuard
from shared.service import Runtime, get_runtime


@dataclass
class DispatchDeps:
    """What ``app.py`` builds once per process, in this order (and closes in reverse)."""

    clock: Clock
    """The time every rule asks; tests move it."""
    cache: WorkspaceCache
    """A workspace's settings, channels and templates; routes that change them invalidate it."""
    guard: OutboundGuard
    """Checks URLs a workspace sets (save time) and the addresses they resolve to (connect time)."""
    smtp: SmtpPool
    http: HttpChannels
    """The notifier's HTTP clients (chat notifications; webhooks go through its poster)."""
    sender_http: HttpChannels
    """The sender's (SMS, WhatsApp, chat invitations): pools sized to ``send_concurrency``."""
    sender: InvitationSender
    """The ``sender`` worker: invitations and reminders."""
    notifier: Notifier
    """The ``notifier`` worker: staff notifications and outgoing webhooks."""
    crm: CrmWorker
    """The ``crm`` worker: queued updates to the workspaces' CRMs."""


DispatchRuntime = Runtime[DispatchSettings, DispatchDeps]
RuntimeDep = Annotated[DispatchRuntime, Depends(get_runtime)]
