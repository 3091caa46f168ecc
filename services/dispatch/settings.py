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
    mail_from: str = "closeloop <surveys@closeloop.localhost>"
    survey_base_url: str = "http://127.0.0.1:8003"
    """Public URL of the responses service; survey links are ``{survey_base_url}/s/{token}``."""
    link_ttl_days: int = Field(30, ge=1, le=365)
    sender_poll_interval_ms: int = Field(500, ge=10)
    send_max_attempts: int = Field(5, ge=1)
    send_backoff_s: float = Field(30.0, ge=0)
    """Wait before the 2nd attempt; doubles for each further attempt, capped at one hour."""
    send_concurrency: int = Field(10, ge=1, le=200)
    send_claim_timeout_s: float = Field(300.0, gt=0)
    """A ``sending`` claim older than this belongs to a sender that died; it is attempted again."""
