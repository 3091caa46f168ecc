from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class DispatchSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_DISPATCH_", extra="ignore", populate_by_name=True)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    """Upgrade the connection with STARTTLS (port 587); off for the local mail catcher."""
    smtp_timeout_s: float = Field(15.0, gt=0)
    smtp_pool_size: int = Field(4, ge=1, le=64)
    """SMTP connections kept open and reused per dispatch process."""
    mail_from: str = "closeloop <surveys@closeloop.localhost>"
    survey_base_url: str = "http://127.0.0.1:8003"
    """Public URL of the responses service; survey links are ``{survey_base_url}/s/{token}``."""
    trigger_url: str = "http://127.0.0.1:8001"
    """Public URL of the trigger service: the deprecated quiet-hours setting names its successor there."""
    public_url: str = "http://127.0.0.1:8002"
    """Public URL of dispatch itself: short links, unsubscribe links, tracking pixel, provider callbacks."""
    link_ttl_days: int = Field(30, ge=1, le=365)
    sender_poll_interval_ms: int = Field(500, ge=10)
    send_max_attempts: int = Field(5, ge=1)
    send_backoff_s: float = Field(30.0, ge=0)
    """Wait before the 2nd attempt; doubles for each further attempt, capped at one hour."""
    send_concurrency: int = Field(50, ge=1, le=500)
    """Messages claimed and in flight per sender pass (SMTP ones share the connection pool)."""
    send_linger_ms: int = Field(20, ge=0, le=1000)
    """Woken right after a pass that sent something, start the next pass this long after that one
    ended, so that a burst of due messages goes out in a few batches; after a quiet spell, at once."""
    send_claim_timeout_s: float = Field(300.0, gt=0)
    """A ``sending`` claim older than this belongs to a sender that died; it is attempted again."""
    open_tracking: bool = False
    """Default for workspaces that have not chosen: put a 1×1 tracking pixel in invitation emails."""
    rate_limits: str = ""
    """Default per-workspace sends per minute and channel, e.g. ``sms=60,whatsapp=60``; empty: unlimited."""

    twilio_base_url: str = "https://api.twilio.com"
    """Base URL of a Twilio-Messages-API-compatible provider (SMS and WhatsApp)."""
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    sms_from: str | None = None
    """Default sender number (E.164) or Messaging Service SID (``MG…``) for SMS."""
    whatsapp_from: str | None = None
    """Default WhatsApp sender, e.g. ``+14155238886`` (sent as ``whatsapp:+14155238886``)."""
    chat_webhook_url: str | None = None
    """Default Slack-compatible incoming webhook for the chat channel and chat notifications."""
    http_timeout_s: float = Field(10.0, gt=0)
    """Timeout of calls to SMS providers, chat webhooks and outgoing webhooks."""

    sendgrid_webhook_public_key: str | None = None
    """SendGrid Event Webhook verification key (base64 DER, as SendGrid shows it)."""
    mailgun_signing_key: str | None = None
    """Mailgun HTTP webhook signing key."""
    callback_tolerance_s: int = Field(300, ge=10)
    """Provider callbacks whose timestamp is further from now are refused (replay protection)."""

    webhook_max_attempts: int = Field(8, ge=1, le=30)
    """Outgoing webhook attempts per delivery before it is marked failed."""
    webhook_backoff_s: float = Field(5.0, ge=0)
    """First retry delay of outgoing webhooks; doubles per attempt with ±50 % jitter, capped at 1 h."""
    hubspot_base_url: str = "https://api.hubapi.com"
    """The HubSpot API (the operator's setting, not a workspace's)."""
    zendesk_base_url: str = "https://{subdomain}.zendesk.com"
    """The Zendesk API of a connector's ``subdomain`` (the operator's setting)."""
    crm_max_attempts: int = Field(8, ge=1, le=30)
    """CRM calls answered 5xx or not at all are tried this often (429 answers wait, they do not count)."""
    crm_backoff_s: float = Field(5.0, ge=0)
    """First retry delay of CRM calls; doubles per attempt with ±50 % jitter, capped at 1 h."""
    webhook_concurrency: int = Field(200, ge=1, le=1000)
    """Webhook deliveries (and staff notifications) the notifier claims and sends at once per pass."""
    webhook_disable_after: int = Field(5, ge=1)
    """A subscription whose last this many deliveries all failed is disabled."""
