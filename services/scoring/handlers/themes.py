"""A workspace's theme rules: the built-in list until it edits its own."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.handlers import surveys
from services.scoring.models import ThemeRule
from services.scoring.text.themes import DEFAULT_THEMES, patterns
from shared.errors import NotFound


async def rules_of(session: AsyncSession, *, workspace_id: str) -> dict[str, dict[str, list[str]]]:
    """Return the workspace's themes and their keywords per language."""
    settings = await surveys.workspace_settings(session, workspace_id=workspace_id)
    if not settings.themes_configured:
        return {theme: {k: list(v) for k, v in words.items()} for theme, words in DEFAULT_THEMES.items()}
    rows = await session.scalars(
        select(ThemeRule).where(ThemeRule.workspace_id == workspace_id).order_by(ThemeRule.theme)
    )
    return {row.theme: row.keywords for row in rows}


async def patterns_of(session: AsyncSession, *, workspace_id: str) -> dict[str, list[str]]:
    """Return each theme's keywords as the padded lemma phrases comments are matched against."""
    return {
        theme: patterns(words)
        for theme, words in (await rules_of(session, workspace_id=workspace_id)).items()
    }


async def get_theme(session: AsyncSession, *, workspace_id: str, theme: str) -> dict[str, list[str]]:
    """Return one theme's keywords, or raise ``NotFound`` naming ``theme``."""
    found = (await rules_of(session, workspace_id=workspace_id)).get(theme)
    if found is None:
        raise NotFound(f"No theme {theme!r} in this workspace.", field="theme")
    return found


async def _take_over_defaults(session: AsyncSession, *, workspace_id: str) -> None:
    """The first edit copies the built-in themes into the workspace's own list."""
    settings = await surveys.workspace_settings(session, workspace_id=workspace_id)
    if settings.themes_configured:
        return
    for name, words in DEFAULT_THEMES.items():
        await session.execute(
            insert(ThemeRule)
            .values(workspace_id=workspace_id, theme=name, keywords=words)
            .on_conflict_do_nothing()
        )
    await surveys.mark_themes_configured(session, workspace_id=workspace_id)


async def put_theme(
    session: AsyncSession, *, workspace_id: str, theme: str, keywords: dict[str, list[str]]
) -> dict[str, list[str]]:
    """Create or replace one theme's keywords; return them."""
    await _take_over_defaults(session, workspace_id=workspace_id)
    await session.execute(
        insert(ThemeRule)
        .values(workspace_id=workspace_id, theme=theme, keywords=keywords)
        .on_conflict_do_update(
            index_elements=["workspace_id", "theme"], set_={"keywords": keywords, "updated_at": func.now()}
        )
    )
    return keywords


async def add_keyword(
    session: AsyncSession, *, workspace_id: str, theme: str, language: str, keyword: str
) -> dict[str, list[str]]:
    """Add a keyword to a theme (created when new); return the theme's keywords."""
    current = (await rules_of(session, workspace_id=workspace_id)).get(theme, {})
    words = {lang: list(ws) for lang, ws in current.items()}
    if keyword not in words.setdefault(language, []):
        words[language].append(keyword)
    return await put_theme(session, workspace_id=workspace_id, theme=theme, keywords=words)


async def delete_theme(session: AsyncSession, *, workspace_id: str, theme: str) -> None:
    """Remove a theme; ``NotFound`` when there is none of that name."""
    await get_theme(session, workspace_id=workspace_id, theme=theme)
    await _take_over_defaults(session, workspace_id=workspace_id)
    await session.execute(
        delete(ThemeRule).where(ThemeRule.workspace_id == workspace_id, ThemeRule.theme == theme)
    )
