from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class FollowUpSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_FOLLOWUP_", extra="ignore", populate_by_name=True)

    max_page_size: int = 500
    """The largest ``limit`` accepted by GET /v1/tasks."""
