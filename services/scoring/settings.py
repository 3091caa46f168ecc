from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings
from shared.vocabulary import NpsScale


class ScoringSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_SCORING_", extra="ignore", populate_by_name=True)

    default_nps_scale: NpsScale = "standard"
    """How NPS/NLS answers are classified for surveys without their own setting:
    ``standard`` counts 9–10 as promoters, ``european`` counts 8–10."""

    target_interval_s: float = Field(60.0, gt=0)
    """How often each experience target is evaluated on its rolling window."""

    export_batch_size: int = Field(2000, ge=1, le=50_000)
    """Rows an export (responses, a segment's contacts) reads per keyset batch: its memory bound."""

    answer_cache_days: int = Field(200, ge=0, le=3650)
    """How many recent days of each workspace's answers an API process keeps in memory, as columns, for
    segmented reports (filters, ``group_by`` a dimension) from a day in them on; 0: none, every report
    reads PostgreSQL. Two quarters and a little: a quarter compared with the previous one."""

    answer_cache_max_answers: int = Field(10_000_000, ge=0)
    """The most answers an API process keeps in those columns (~30 bytes each, up to ~40 while growing):
    the workspaces used least recently are dropped first."""
