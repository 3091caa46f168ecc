from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class TriggerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_TRIGGER_", extra="ignore", populate_by_name=True)

    public_url: str = "http://127.0.0.1:8001"
    """Where CRMs reach this service; used to print webhook URLs."""
