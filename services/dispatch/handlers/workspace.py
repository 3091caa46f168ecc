"""A workspace's configuration as sending reads it: settings, channels and templates, cached per
workspace, and the most specific template for a message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.dispatch import templates
from services.dispatch.channels import ChannelSettings, resolve_channel
from services.dispatch.handlers import owners
from services.dispatch.models import ChannelConfig, Template, WorkspaceSettings
from services.dispatch.schemas import WorkspaceConfig
from services.dispatch.settings import DispatchSettings
from shared.cache import TTLCache
from shared.vocabulary import CHANNELS


@dataclass
class CachedWorkspace:
    """What every survey request of a workspace needs: its settings, channels and templates."""

    config: WorkspaceConfig
    channels: dict[tuple[str, str], ChannelSettings]
    templates: list[Template]


class WorkspaceCache:
    """Settings, channels and templates per workspace, kept for ``ttl_s`` seconds.

    Every survey request needs them and they change rarely; writes through this process's API
    drop its entry at once, and other replicas see a change within ``ttl_s``.
    """

    def __init__(self, settings: DispatchSettings, *, ttl_s: float = 5.0) -> None:
        self.settings = settings
        self._cache: TTLCache[CachedWorkspace] = TTLCache(ttl_s)

    async def get(self, session: AsyncSession, workspace_id: str) -> CachedWorkspace:
        """Return the workspace's configuration, loaded through ``session`` when not cached."""

        async def fetch() -> CachedWorkspace:
            rows = (
                await session.scalars(select(Template).where(Template.workspace_id == workspace_id))
            ).all()
            for row in rows:
                session.expunge(row)
            return CachedWorkspace(
                config=await workspace_config(session, workspace_id=workspace_id),
                channels=await channel_settings(session, self.settings, workspace_ids=[workspace_id]),
                templates=list(rows),
            )

        entry = await self._cache.get_or_load(workspace_id, fetch)
        assert entry is not None  # fetch always returns one
        return entry

    def cached(self, workspace_id: str) -> CachedWorkspace | None:
        """Return the workspace's entry while it is fresh, without loading it."""
        return self._cache.get(workspace_id)

    def invalidate(self, workspace_id: str) -> None:
        """Drop the workspace's entry: the next ``get`` loads it again."""
        self._cache.invalidate(workspace_id)

    def invalidate_after_commit(self, session: AsyncSession, workspace_id: str) -> None:
        """Drop the workspace's entry now and once ``session`` commits the change it is making."""
        self.invalidate(workspace_id)
        event.listen(
            session.sync_session, "after_commit", lambda _s: self.invalidate(workspace_id), once=True
        )


async def workspace_config(session: AsyncSession, *, workspace_id: str) -> WorkspaceConfig:
    """Return the workspace's effective dispatch settings: its own (defaults when it has none), with the
    branding and quiet hours their owners sent in place of its own (``owners``)."""
    return (await workspace_configs(session, workspace_ids=[workspace_id]))[workspace_id]


async def workspace_configs(
    session: AsyncSession, *, workspace_ids: Iterable[str]
) -> dict[str, WorkspaceConfig]:
    """Return the effective dispatch settings of several workspaces (see ``workspace_config``)."""
    ids = set(workspace_ids)
    rows = (
        await session.scalars(select(WorkspaceSettings).where(WorkspaceSettings.workspace_id.in_(ids)))
    ).all()
    found = {r.workspace_id: WorkspaceConfig.model_validate(r.settings) for r in rows}
    received = await owners.received(session, workspace_ids=ids)
    return {ws: owners.effective(found.get(ws, WorkspaceConfig()), received.get(ws, {})) for ws in ids}


async def channel_settings(
    session: AsyncSession, settings: DispatchSettings, *, workspace_ids: Iterable[str]
) -> dict[tuple[str, str], ChannelSettings]:
    """Return the effective settings of every channel of the given workspaces."""
    ids = set(workspace_ids)
    rows = (await session.scalars(select(ChannelConfig).where(ChannelConfig.workspace_id.in_(ids)))).all()
    own = {(r.workspace_id, r.channel): r.config for r in rows}
    return {(ws, ch): resolve_channel(ch, own.get((ws, ch)), settings) for ws in ids for ch in CHANNELS}


def configured_channels(channels: dict[tuple[str, str], ChannelSettings], workspace_id: str) -> set[str]:
    """Return the channels that can send in ``workspace_id``."""
    return {ch for (ws, ch), c in channels.items() if ws == workspace_id and c.configured}


async def find_template(
    session: AsyncSession, *, workspace_id: str, survey_id: str, channel: str, locale: str | None, kind: str
) -> Template | None:
    """Return the most specific template: survey over any survey, locale over any locale, kind over any kind."""
    rows = (
        await session.scalars(
            select(Template).where(
                Template.workspace_id == workspace_id,
                Template.channel == channel,
                Template.survey_id.in_([survey_id, ""]),
                Template.locale.in_(_locales(locale)),
                Template.kind.in_([kind, ""]),
            )
        )
    ).all()
    return pick_template(rows, survey_id=survey_id, locale=locale, kind=kind)


def _locales(locale: str | None) -> list[str]:
    """Return ``de-CH`` as ``["de-CH", "de", ""]``: the exact locale, its language, any."""
    if not locale:
        return [""]
    language = locale.split("-")[0].split("_")[0]
    return list(dict.fromkeys([locale, language, ""]))


def pick_template(
    rows: Sequence[Template], *, survey_id: str, locale: str | None, kind: str
) -> Template | None:
    """Return the most specific of ``rows`` for the survey, locale and kind, or None."""
    order = _locales(locale)

    def rank(t: Template) -> tuple[int, int, int]:
        return (t.survey_id != survey_id, order.index(t.locale) if t.locale in order else 9, t.kind != kind)

    candidates = [
        t for t in rows if t.locale in order and t.survey_id in (survey_id, "") and t.kind in (kind, "")
    ]
    return min(candidates, key=rank) if candidates else None


def template_spec(template: Template | None) -> templates.TemplateSpec | None:
    """Return what rendering needs of a stored template (None: the built-in one)."""
    if template is None:
        return None
    # ``embed`` stored: {} = embed nothing; null (or a scale from before the embedded question was the
    # survey's own) = embed the survey's first question.
    return templates.TemplateSpec(
        template.id, template.subject, template.text_body, template.html_body, template.embed != {}
    )


def brand_of(config: WorkspaceConfig) -> templates.Branding:
    """Return the branding an email shows, from the workspace's effective settings."""
    b = config.branding
    return templates.Branding(
        name=b.name, colour=b.colour, logo_url=str(b.logo_url) if b.logo_url else None, footer=b.footer
    )
