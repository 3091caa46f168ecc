"""What customers wrote: themes, the comments behind them, suggestions and theme rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from services.scoring.api.params import ReportDep
from services.scoring.deps import RuntimeDep
from services.scoring.handlers import themes as rules
from services.scoring.queries import reports
from services.scoring.queries import themes as queries
from services.scoring.schemas import (
    AcceptSuggestionIn,
    CommentsOut,
    SuggestionOut,
    SuggestionsOut,
    ThemeRuleIn,
    ThemeRuleOut,
    ThemesOut,
)
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.paging import Cursor, link_next
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["themes"])

ThemeName = Annotated[str, Path(min_length=1, max_length=60, description="The theme's name")]


@router.get(
    "/v1/themes",
    response_model_by_alias=True,
    summary="Themes of the comments: mentions, share of negative sentiment, NPS of those who mention each",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def theme_report(request: ReportDep, session: SessionDep, runtime: RuntimeDep) -> ThemesOut:
    return await reports.themes_report(session, request, default_scale=runtime.settings.default_nps_scale)


@router.get(
    "/v1/themes/{theme}/comments",
    summary="The comments behind a theme, newest first, a page at a time",
    description='`next_cursor` in the body (and the `Link: <…>; rel="next"` header) names the next page; '
    "`offset` still works but is deprecated.",
    dependencies=[requires(Permission.RESPONSES_READ)],
)
async def theme_comments(
    http: Request,
    response: Response,
    theme: ThemeName,
    request: ReportDep,
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000, description="Deprecated: use cursor")] = 0,
    cursor: Cursor = None,
) -> CommentsOut:
    scope = await reports.scope_for(session, request, default_scale=runtime.settings.default_nps_scale)
    rows, next_cursor = await queries.comments_about(
        session,
        scope,
        workspace_id=request.workspace_id,
        theme=theme,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    link_next(http, response, next_cursor)
    return CommentsOut(theme=theme, comments=rows, next_cursor=next_cursor)


@router.get(
    "/v1/themes/suggestions",
    summary="Suggested new themes: words that set detractors' comments apart (c-TF-IDF)",
    dependencies=[requires(Permission.METRICS_READ)],
)
async def theme_suggestions(
    request: ReportDep,
    session: SessionDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
    min_mentions: Annotated[int, Query(ge=1, le=1000, description="Detractor comments a term needs")] = 3,
) -> SuggestionsOut:
    scope = await reports.scope_for(session, request, default_scale=runtime.settings.default_nps_scale)
    found = await queries.suggestions(
        session, scope, workspace_id=request.workspace_id, limit=limit, min_mentions=min_mentions
    )
    return SuggestionsOut(
        suggestions=[SuggestionOut(**vars(s) | {"score": round(s.score, 5)}) for s in found]
    )


@router.post(
    "/v1/themes/suggestions/accept",
    status_code=status.HTTP_201_CREATED,
    summary="Accept a suggestion: a new theme (or a keyword of an existing one)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def accept_suggestion(
    body: AcceptSuggestionIn, workspace: WorkspaceDep, session: SessionDep
) -> ThemeRuleOut:
    theme = body.theme or body.term
    keywords = await rules.add_keyword(
        session, workspace_id=workspace, theme=theme, language=body.language, keyword=body.term
    )
    return ThemeRuleOut(theme=theme, keywords=keywords)


@router.get(
    "/v1/themes/rules",
    summary="The workspace's themes and their keywords (the built-in list until edited)",
    dependencies=[requires(Permission.SETTINGS_READ)],
)
async def list_rules(workspace: WorkspaceDep, session: SessionDep) -> list[ThemeRuleOut]:
    found = await rules.rules_of(session, workspace_id=workspace)
    return [ThemeRuleOut(theme=t, keywords=k) for t, k in sorted(found.items())]


@router.put(
    "/v1/themes/rules/{theme}",
    summary="Create or replace a theme's keywords (they apply to past comments too)",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def put_rule(
    theme: ThemeName, body: ThemeRuleIn, workspace: WorkspaceDep, session: SessionDep
) -> ThemeRuleOut:
    keywords = {str(lang): [w.strip() for w in words if w.strip()] for lang, words in body.keywords.items()}
    saved = await rules.put_theme(session, workspace_id=workspace, theme=theme, keywords=keywords)
    return ThemeRuleOut(theme=theme, keywords=saved)


@router.delete(
    "/v1/themes/rules/{theme}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a theme",
    dependencies=[requires(Permission.SETTINGS_WRITE)],
)
async def delete_rule(theme: ThemeName, workspace: WorkspaceDep, session: SessionDep) -> None:
    await rules.delete_theme(session, workspace_id=workspace, theme=theme)
