"""The query parameters reports share, parsed once into a ``reports.Request``."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Annotated

from fastapi import Depends, Path, Query

from services.scoring.domain import check_dimension, parse_filters
from services.scoring.queries.reports import Request
from shared.errors import InvalidInput
from shared.service import WorkspaceDep
from shared.vocabulary import Interval, NpsScale, SurveyKind

SurveyId = Annotated[str, Path(min_length=1, max_length=64, description="The survey's id")]
ScaleParam = Annotated[
    NpsScale | None, Query(description="Override every survey's NPS scale for this report")
]
Since = Annotated[date | None, Query(alias="from", description="First UTC day included, e.g. 2026-11-01")]
Until = Annotated[date | None, Query(alias="to", description="Last UTC day included")]
SurveyFilter = Annotated[
    str | None, Query(min_length=1, max_length=64, description="Only this survey; all surveys when absent")
]
QuestionFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="Only this question; every question of the metric when absent",
    ),
]
Kinds = Annotated[
    list[SurveyKind] | None,
    Query(
        alias="kind",
        description="Survey kinds to count (repeat for several). Default: every kind for one survey; "
        "transactional and relationship (no retention) for the workspace",
    ),
]
Filters = Annotated[
    list[str] | None,
    Query(
        alias="filter",
        description="A segment: `dim=value` or `dim!=value`, repeat for several (all must hold; several `=` "
        "values of one dimension are alternatives), e.g. `filter=country=NL&filter=plan!=free`",
        openapi_examples={"segment": {"value": ["country=NL", "plan!=free"]}},
    ),
]
GroupBy = Annotated[
    str | None,
    Query(
        max_length=40,
        description="A dimension (channel, kind, language, country, team, agent, product, journey_stage, plan, "
        "role, any other attribute) or `survey`: the same figures per value",
    ),
]
Compare = Annotated[
    bool,
    Query(
        description="Compare with the previous period of the same length (needs `from`), with a two-sided test"
    ),
]


def check_period(since: date | None, until: date | None) -> None:
    if since and until and since > until:
        raise InvalidInput(f"'from' ({since}) is after 'to' ({until}).", field="from")


async def export_request(
    workspace: WorkspaceDep,
    survey_id: SurveyFilter = None,
    question_id: QuestionFilter = None,
    kinds: Kinds = None,
    since: Since = None,
    until: Until = None,
    filters: Filters = None,
    scale: ScaleParam = None,
) -> Request:
    """Return the scope parameters of a segment or an export (a report's, without grouping)."""
    check_period(since, until)
    return Request(
        workspace_id=workspace,
        survey_id=survey_id,
        question_id=question_id,
        kinds=tuple(dict.fromkeys(kinds)) if kinds else None,
        since=since,
        until=until,
        segment=parse_filters(filters or []),
        scale=scale,
    )


ExportDep = Annotated[Request, Depends(export_request)]


async def report_request(
    workspace: WorkspaceDep,
    survey_id: SurveyFilter = None,
    question_id: QuestionFilter = None,
    kinds: Kinds = None,
    since: Since = None,
    until: Until = None,
    filters: Filters = None,
    group_by: GroupBy = None,
    compare: Compare = False,
    scale: ScaleParam = None,
) -> Request:
    """Return the report parameters of a request (422 naming the parameter when one cannot be): an
    export's, grouped. The dimension is checked before the export's filters are read: a request with
    both wrong is told about the dimension.

    ``async`` though it awaits nothing: FastAPI runs a plain function in a worker thread, a hop that
    cost more than the parsing, six times per console overview."""
    check_period(since, until)
    if group_by is not None and group_by != "survey":
        check_dimension(group_by)
    scope = await export_request(workspace, survey_id, question_id, kinds, since, until, filters, scale)
    return replace(scope, group_by=group_by, compare=compare)


ReportDep = Annotated[Request, Depends(report_request)]
IntervalParam = Annotated[Interval, Query(description="The buckets: day, week (ISO, from Monday) or month")]
