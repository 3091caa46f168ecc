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
