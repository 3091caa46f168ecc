"""Routes for kiosk links (public per-location links for tablets and QR posters) and their QR codes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, status
from fastapi import Response as HTTPResponse

from services.responses import pages
from services.responses.deps import ResponsesRuntime, RuntimeDep
from services.responses.handlers import kiosks
from services.responses.models import Kiosk
from services.responses.schemas import KioskCreate, KioskOut
from shared.access import Permission
from shared.guard import GuardedRoute, requires
from shared.rows import from_row
from shared.service import SessionDep, WorkspaceDep

router = APIRouter(route_class=GuardedRoute, tags=["kiosks"])


def _kiosk_url(runtime: ResponsesRuntime, kiosk: Kiosk) -> str:
    return f"{runtime.settings.public_url}/k/{kiosk.key}"


def _kiosk_out(kiosk: Kiosk, request: Request, runtime: ResponsesRuntime) -> KioskOut:
    return from_row(
        KioskOut,
        kiosk,
        url=_kiosk_url(runtime, kiosk),
        qr_svg_url=str(request.url_for("kiosk_qr", kiosk_id=kiosk.id, fmt="svg")),
        qr_png_url=str(request.url_for("kiosk_qr", kiosk_id=kiosk.id, fmt="png")),
    )


@router.post(
    "/v1/surveys/{survey_id}/kiosks",
    status_code=status.HTTP_201_CREATED,
    summary="A public per-location link (tablet or QR poster) for anonymous responses",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def create_kiosk(
    survey_id: str,
    body: KioskCreate,
    request: Request,
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> KioskOut:
    kiosk = await kiosks.create_kiosk(session, workspace_id=workspace, survey_id=survey_id, body=body)
    return _kiosk_out(kiosk, request, runtime)


@router.get(
    "/v1/kiosks",
    summary="The workspace's kiosk links",
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def list_kiosks(
    request: Request, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> list[KioskOut]:
    return [
        _kiosk_out(k, request, runtime) for k in await kiosks.list_kiosks(session, workspace_id=workspace)
    ]


@router.delete(
    "/v1/kiosks/{kiosk_id}",
    summary="Switch a kiosk link off (its URL shows 'no longer available'); its responses stay",
    dependencies=[requires(Permission.SURVEYS_WRITE)],
)
async def deactivate_kiosk(
    kiosk_id: str, request: Request, workspace: WorkspaceDep, session: SessionDep, runtime: RuntimeDep
) -> KioskOut:
    kiosk = await kiosks.deactivate_kiosk(session, workspace_id=workspace, kiosk_id=kiosk_id)
    return _kiosk_out(kiosk, request, runtime)


QR_MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}


@router.get(
    "/v1/kiosks/{kiosk_id}/qr.{fmt}",
    name="kiosk_qr",
    summary="The kiosk link as a QR code: qr.svg for print, qr.png for screens",
    response_class=HTTPResponse,
    responses={
        200: {"content": {media: {} for media in QR_MEDIA_TYPES.values()}},
        410: {"description": "The kiosk is switched off"},
    },
    dependencies=[requires(Permission.SURVEYS_READ)],
)
async def kiosk_qr(
    kiosk_id: str,
    fmt: Literal["svg", "png"],
    workspace: WorkspaceDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> HTTPResponse:
    kiosk = await kiosks.active_kiosk(session, workspace_id=workspace, kiosk_id=kiosk_id)
    return HTTPResponse(pages.qr_code(_kiosk_url(runtime, kiosk), kind=fmt), media_type=QR_MEDIA_TYPES[fmt])
