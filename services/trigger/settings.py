from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.settings import ServiceSettings


class TriggerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CLOSELOOP_TRIGGER_", extra="ignore", populate_by_name=True)

    public_url: str = "http://127.0.0.1:8001"
    """Where CRMs reach this service: webhook URLs are built from it, and HubSpot's v3 signature
    covers the full URL HubSpot called, so behind a proxy or ingress set it to the public URL."""
    signature_tolerance_s: int = Field(300, ge=10, le=3600)
    """Signed timestamps (HubSpot v3, Zendesk) further than this from now are refused."""
    rate_limit_per_s: float = Field(500, gt=0)
    """Webhook requests per second per integration (and per workspace for ``POST /v1/events``)."""
    rate_limit_burst: float = Field(1000, gt=0)
    """Requests a quiet integration may send at once before the rate applies."""
    max_batch_events: int = Field(1000, ge=1)
    """Most events one request may carry (HubSpot sends up to 100)."""
    group_commit_events: int = Field(500, ge=1)
    """Most events one shared store takes (webhooks arriving together are stored together)."""
    group_commit_concurrency: int = Field(2, ge=1)
    """Stores in flight per integration; more requests wait for the next one."""
    evaluate_batch: int | None = Field(None, ge=1)
    """Most stored events the evaluator applies the rules to in one transaction. Default: 500 in a
    worker (larger passes cost less per event), 100 where the API shares the process (a pass holds
    the event loop while it runs)."""
    evaluate_linger_ms: int = Field(50, ge=0, le=5000)
    """While events keep arriving, the evaluator starts a pass at most this long after the last one
    ended, so that each takes more of them at once (an event after a quiet spell goes at once)."""
    evaluate_poll_ms: int = Field(1000, ge=10)
    """How often the evaluator looks for stored events when no notification woke it."""
    cache_ttl_s: float = Field(5, ge=0)
    """How long integrations and rules are served from memory; other replicas see changes this late."""
    scheduler_interval_ms: int = Field(1000, ge=10)
    """How often due sends (delays, quiet hours, journeys, recurring surveys) are looked for."""
    scheduler_batch: int = Field(200, ge=1)
    """Most due sends one pass handles before looking again."""
    anonymise_interval_s: float = Field(300, gt=0)
    """How often the anonymiser looks for workspaces whose day's ``AnonymisationDue`` is not out yet."""
    hubspot_api_url: str = "https://api.hubapi.com"
    """HubSpot's API, for the contact of deal and ticket webhooks (integrations with an access token)."""
    hubspot_timeout_s: float = Field(4, gt=0)
    """How long a lookup may take; HubSpot waits 5 s for the webhook's answer."""
    import_max_rows: int = Field(5000, ge=1)
    """Most rows one ``POST /v1/contacts/import`` request may carry (the CLI sends chunks)."""
