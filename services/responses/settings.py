from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ResponsesSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLOSELOOP_RESPONSES_", extra="ignore", populate_by_name=True
    )

    public_url: str = "http://127.0.0.1:8003"
    """Where customers reach the survey pages; dispatch builds links as ``<public_url>/s/<token>``."""
    max_answer_chars: int = Field(5000, ge=1, le=100_000)
    """The longest free-text answer accepted."""
    lint_max_seconds: int = Field(120, ge=10, le=3600)
    """The question checklist warns when answering a survey takes longer than this."""
    max_logo_bytes: int = Field(16_384, ge=1024, le=40_000)
    """The largest inline logo; the survey page stays under 50 KB."""
    kiosk_rate_per_minute: float = Field(6.0, gt=0, le=6000)
    """New kiosk respondents per minute per kiosk and client address (token bucket, per process)."""
    kiosk_burst: int = Field(20, ge=1, le=10_000)
    """How many kiosk respondents may start at once before the rate applies."""
    kiosk_session_ttl_s: int = Field(3600, ge=60, le=7 * 24 * 3600)
    """How long one kiosk respondent's session link stays valid."""
    kiosk_reset_s: int = Field(8, ge=1, le=600)
    """The kiosk's thank-you page starts over for the next person after this many seconds."""
    kiosk_idle_s: int = Field(120, ge=10, le=3600)
    """A kiosk page left untouched this long starts over (an abandoned half answer is kept as partial)."""
    read_pool_size: int = Field(8, ge=1, le=100)
    """Connections of the survey page's read path (beside the unit-of-work engine's own)."""
