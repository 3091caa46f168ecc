from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from shared.access import Role
from shared.netguard import parse_networks
from shared.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_CONSOLE_", extra="ignore", populate_by_name=True)

    public_url: str = "http://127.0.0.1:8000"
    """Where people reach the console: the links in invitation and password emails and the single
    sign-on redirect URI (``<public_url>/sso/callback``) are built from it."""
    secure_cookies: Literal["auto", "always", "never"] = "auto"
    """Whether cookies carry ``Secure``: auto when the request came over HTTPS (its scheme or the
    proxy's ``X-Forwarded-Proto``), always, or never."""
    trusted_proxies: str = ""
    """Comma-separated CIDRs of reverse proxies (an Ingress controller) whose ``X-Forwarded-For`` names the
    browser; sign-in throttling counts that address. Empty: the connection's own address."""
    session_idle_minutes: int = Field(30, ge=1, le=7 * 24 * 60)
    """A session nobody used this long ends (NIST SP 800-63B AAL2: 30 minutes)."""
    session_absolute_hours: int = Field(12, ge=1, le=30 * 24)
    """A session ends this long after sign-in, used or not (NIST AAL2: 12 hours)."""
    user_token_ttl_s: int = Field(300, ge=30, le=3600)
    """How long a user token the console mints for a person's calls to the services lasts."""
    min_password_length: int = Field(15, ge=8, le=64)
    """NIST SP 800-63B-4: 15 characters for a password that is the only factor (8 with a second one)."""
    reset_token_minutes: int = Field(30, ge=5, le=24 * 60)
    """How long a "forgot password" link works (once)."""
    invitation_days: int = Field(7, ge=1, le=30)
    """How long an invitation (or the CLI's sign-in link) works (once)."""
    sign_in_window_minutes: int = Field(15, ge=1, le=24 * 60)
    """The window failed sign-ins are counted in."""
    sign_in_failures_per_account: int = Field(5, ge=1)
    """Failed sign-ins to one email address within the window before it is throttled (429)."""
    sign_in_failures_per_address: int = Field(20, ge=1)
    """Failed sign-ins from one client address within the window before it is throttled (429)."""
    argon2_time_cost: int = Field(3, ge=1)
    """argon2id passes (RFC 9106's second recommended option: t=3, 64 MiB, p=4)."""
    argon2_memory_kib: int = Field(65536, ge=1024)
    """argon2id memory in KiB."""
    argon2_parallelism: int = Field(4, ge=1)
    """argon2id lanes."""
    sso_default_role: Role = Role.VIEWER
    """The role a person gets when single sign-on adds them to a workspace whose configuration names none."""
    key_usage_flush_s: float = Field(30, gt=0)
    """How often the console publishes which keys its callers used (``KeyUsed``)."""
    revocation_poll_ms: int = Field(1000, ge=50)
    """How often each replica reads newly revoked keys from its table."""
    housekeeping_interval_s: float = Field(600, gt=0)
    """How often ended sessions, used links and old failed sign-ins are deleted."""
    trigger_url: str = "http://127.0.0.1:8001"
    """Where the console reaches trigger's REST API (in Kubernetes: its Service, e.g. http://closeloop-trigger)."""
    dispatch_url: str = "http://127.0.0.1:8002"
    """Where the console reaches dispatch's REST API."""
    responses_url: str = "http://127.0.0.1:8003"
    """Where the console reaches responses' REST API."""
    scoring_url: str = "http://127.0.0.1:8004"
    """Where the console reaches scoring's REST API."""
    followup_url: str = "http://127.0.0.1:8005"
    """Where the console reaches followup's REST API."""
    service_timeout_s: float = Field(10, gt=0, le=120)
    """How long a page waits for one service's answer before it shows that the service did not answer."""
    live_poll_ms: int = Field(1000, ge=100, le=60_000)
    """How often an open overview's live stream asks scoring whether the figures changed."""
    overview_cache_s: float = Field(5, ge=0, le=300)
    """How long the overview's figures are kept per workspace, role and filters (0: never); an open
    overview's live stream drops them as soon as scoring's counts move."""

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        try:
            parse_networks(value)
        except ValueError as exc:
            raise ValueError(
                f"CLOSELOOP_CONSOLE_TRUSTED_PROXIES is a comma-separated list of CIDRs: {exc}"
            ) from exc
        return value
