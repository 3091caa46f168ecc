from typing import Literal

from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_SCORING_", extra="ignore", populate_by_name=True)

    default_nps_scale: Literal["standard", "european"] = "standard"
    """How NPS/NLS answers are classified for surveys without their own setting:
    ``standard`` counts 9–10 as promoters, ``european`` counts 8–10."""
