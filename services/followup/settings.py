from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class FollowUpSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_FOLLOWUP_", extra="ignore", populate_by_name=True)

    max_page_size: int = 500
    """The largest ``limit`` accepted by the list endpoints."""
    escalation_interval_ms: int = Field(5000, ge=10)
    """How often the escalation scheduler looks for cases whose next ladder step has come due."""
    escalation_batch: int = Field(2000, ge=1)
    """Most cases one escalation pass claims (one transaction); a full pass goes again at once."""
