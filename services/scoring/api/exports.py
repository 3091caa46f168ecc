"""Segments out and exports: a segment's contacts (a page at a time, or the whole of it as CSV or
NDJSON), and every response of a scope streamed as CSV or NDJSON for BI tools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from services.scoring.api.params import ExportDep
from services.scoring.deps import RuntimeDep
from services.scoring.queries import exports, reports, segments
from services.scoring.queries.scope import Scope
from services.scoring.schemas.exports import MemberOut, SegmentPageOut
from shared.access import Permission
from shared.exports import Format, csv_lines, ndjson_lines, stream
from shared.guard import GuardedRoute, requires
from shared.paging import Cursor, link_next
from shared.service import SessionDep

router = APIRouter(route_class=GuardedRoute, tags=["exports"])

SegmentPath = Annotated[
    segments.SegmentName,
    Path(
        description="An NPS class (`promoter`, `passive`, `detractor`) or a loyalty-matrix cell (`pure`, "
        "`false`, `trapped`, `disloyal`, `undecided`)"
    ),
]
MetricParam = Annotated[
    Literal["nps", "nls"],
    Query(description="For an NPS class: classify the NPS (default) or the NLS answers; cells use both"),
]
FormatParam = Annotated[Format, Query(alias="format", description="`csv` (RFC 4180) or `ndjson`")]
SEGMENT_DOC = (
    "A contact is in the segment by their **latest** answer in the scope (`survey_id`, `question_id`, "
    "`kind`, `from`, `to`, `filter`, `scale` as in every report): the newest response with the metric, or "
    "with NPS and NLS for a cell. Erased contacts are not listed."
)
MEMBER_COLUMNS = tuple(MemberOut.model_fields)
EXAMPLE_ROW: dict[str, Any] = {
    "response_id": "r-81",
    "survey_id": "svy-support-nps",
    "survey_version": 3,
    "kind": "transactional",
    "channel": "email",
    "locale": "nl-NL",
    "contact_id": "5b0c6f0e-8a51-4a8e-9d1c-0f7a2f0c9e11",
    "completed_at": "2026-11-29T14:02:11+00:00",
    "nps": 3,
    "nls": 9,
    "classification": "detractor",
    "loyalty": "trapped",
    "negative": True,
    "consent_to_contact": True,
    "scores": {"nls": 9, "nps": 3},
    "comment": "Te laat geleverd, en de factuur klopte niet",
    "comment_language": "nl",
    "sentiment": -0.6,
    "sentiment_label": "negative",
    "themes": ["delivery", "price"],
    "case_id": "0d6c1c57-4c1e-4b1f-9a53-3f1f4e1c2b7a",
    "case_status": "resolved",
    "case_root_cause_category": "Delivery",
    "case_root_cause": "Late",
    "won_back": True,
    "retention_score": 9,
    "language": "nl",
    "country": "NL",
    "team": "support",
    "dimensions": {
        "channel": "email",
        "country": "NL",
        "kind": "transactional",
        "language": "nl",
        "team": "support",
    },
}
"""One row of the responses export, for the OpenAPI examples."""
CSV_EXAMPLE = {
    "text/csv": {
        "example": "contact_id,response_id,survey_id,question_id,score,nls,completed_at,dimensions\r\n"
        '5b0c6f0e-…,r-81,svy-support-nps,nps,10,,2026-11-29T14:02:11+00:00,"{""country"":""NL""}"\r\n'
    },
    "application/x-ndjson": {
        "example": '{"contact_id":"5b0c6f0e-…","response_id":"r-81","survey_id":"svy-support-nps",'
        '"question_id":"nps","score":10,"nls":null,"completed_at":"2026-11-29T14:02:11+00:00",'
        '"dimensions":{"country":"NL"}}\n'
    },
}


async def _scope(session: SessionDep, request: reports.Request, runtime: RuntimeDep) -> Scope:
    return await reports.scope_for(session, request, default_scale=runtime.settings.default_nps_scale)


@router.get(
    "/v1/segments/{segment}/contacts",
    summary="The contacts in a segment — promoters, passives, detractors or a loyalty-matrix cell",
    description=SEGMENT_DOC + " By contact id, a page at a time (`next_cursor`, `Link: rel=next`).",
    dependencies=[requires(Permission.CONTACTS_READ)],
)
async def segment_contacts(
    http: Request,
    reply: Response,
    segment: SegmentPath,
    request: ExportDep,
    session: SessionDep,
    runtime: RuntimeDep,
    metric: MetricParam = "nps",
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size, at most 1000")] = 100,
    cursor: Cursor = None,
) -> SegmentPageOut:
    scope = await _scope(session, request, runtime)
    rows, next_cursor = await segments.members(
        session,
        scope,
        workspace_id=request.workspace_id,
        segment=segment,
        metric=metric,
        question_id=request.question_id,
        limit=limit,
        cursor=cursor,
    )
    link_next(http, reply, next_cursor)
    return SegmentPageOut(
        segment=segment, items=[MemberOut(**vars(m)) for m in rows], next_cursor=next_cursor
    )


@router.get(
    "/v1/segments/{segment}/contacts/export",
    summary="Download a segment's contacts as CSV or NDJSON (for a CRM list or a campaign)",
    description=SEGMENT_DOC + " The whole segment, streamed by contact id. CSV fields that start with = + - "
    "@ get a leading `'` (formula injection); NDJSON is unguarded.",
    response_class=StreamingResponse,
    responses={200: {"content": CSV_EXAMPLE, "description": "The segment, one contact a line"}},
    dependencies=[requires(Permission.METRICS_EXPORT)],
)
async def export_segment(
    segment: SegmentPath,
    request: ExportDep,
    session: SessionDep,
    runtime: RuntimeDep,
    fmt: FormatParam = "csv",
    metric: MetricParam = "nps",
) -> StreamingResponse:
    scope = await _scope(session, request, runtime)

    async def batches() -> AsyncIterator[list[dict[str, Any]]]:
        async with runtime.db.sessionmaker() as reader:
            async for rows in segments.every_member(
                reader,
                scope,
                workspace_id=request.workspace_id,
                segment=segment,
                metric=metric,
                question_id=request.question_id,
                batch=runtime.settings.export_batch_size,
            ):
                yield [vars(m) | {"completed_at": m.completed_at.isoformat()} for m in rows]

    return stream(batches(), columns=MEMBER_COLUMNS, fmt=fmt, filename=f"{segment}-contacts")


@router.get(
    "/v1/exports/responses",
    summary="Stream every response of a scope as CSV or NDJSON, for BI tools",
    description="One row per completed response scoring holds, in the order they arrived: the first answer of "
    "each metric (`nps`, `nls`, `csat`, `ces`, `rating`), every score (`scores`, JSON), class, loyalty cell, "
    "negative, consent, the first comment with its language and sentiment, the themes of every comment, the "
    "declared dimensions as columns and every dimension (`dimensions`, JSON). Filtered like every report "
    "(`survey_id`, `kind`, `from`, `to`, `filter`; `question_id` and `scale` do not apply). Streamed in keyset batches: constant memory for any size. "
    "The case opened from the response: `case_id`, `case_status`, root cause, `won_back`, `retention_score`. "
    "Erased contacts' rows carry no contact id and no comment. "
    "CSV fields that start with = + - @ get a leading `'` (formula injection); NDJSON is unguarded.",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The responses, one a line",
            "content": {
                "text/csv": {
                    "example": csv_lines(
                        [exports.COLUMNS, [EXAMPLE_ROW.get(c) for c in exports.COLUMNS]]
                    ).decode()
                },
                "application/x-ndjson": {
                    "example": ndjson_lines([{c: EXAMPLE_ROW.get(c) for c in exports.COLUMNS}]).decode()
                },
            },
        }
    },
    dependencies=[requires(Permission.METRICS_EXPORT)],
)
async def export_responses(
    request: ExportDep, session: SessionDep, runtime: RuntimeDep, fmt: FormatParam = "csv"
) -> StreamingResponse:
    scope = await _scope(session, request, runtime)

    async def batches() -> AsyncIterator[list[dict[str, Any]]]:
        async with runtime.db.sessionmaker() as reader:
            async for rows in exports.response_rows(
                reader, scope, workspace_id=request.workspace_id, batch=runtime.settings.export_batch_size
            ):
                yield rows

    return stream(batches(), columns=exports.COLUMNS, fmt=fmt, filename="responses")
