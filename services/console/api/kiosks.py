"""Kiosks of a survey: a public per-location link for a tablet or a QR poster. Create one, switch one off
(responses keeps its answers), and its QR code, fetched from responses as the signed-in person and served
from the console's own origin (the page's policy loads images from nowhere else)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from fastapi.responses import Response

from services.console.api.forms import Csrf, Id, acting, back_to, form_router, reading
from services.console.apis import ServiceError
from services.console.deps import RuntimeDep, SignedInDep
from shared.access import Permission

router = form_router("responses")


@router.post("/surveys/{survey_id}/kiosks", summary="Create a kiosk link for a survey")
async def create_kiosk(
    survey_id: Id,
    runtime: RuntimeDep,
    signed_in: SignedInDep,
    csrf_token: Csrf = "",
    location_id: Annotated[str, Form(max_length=50)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    locale: Annotated[str, Form(max_length=35)] = "",
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.SURVEYS_WRITE)
    body = {"location_id": location_id.strip()}
    body |= {k: v.strip() for k, v in (("name", name), ("locale", locale)) if v.strip()}
    back = f"/surveys/{survey_id}#kiosks"
    try:
        made = await caller.post("responses", f"/v1/surveys/{survey_id}/kiosks", body)
    except ServiceError as exc:
        return back_to(runtime, back, error=f"responses refused the kiosk: {exc.detail}")
    made_name = made.get("name") or made["location_id"]
    return back_to(runtime, back, done=f"Kiosk “{made_name}” made: print its QR code.")


@router.post("/surveys/{survey_id}/kiosks/{kiosk_id}/off", summary="Switch a kiosk link off")
async def switch_off(
    survey_id: Id, kiosk_id: Id, runtime: RuntimeDep, signed_in: SignedInDep, csrf_token: Csrf = ""
) -> Response:
    _, caller = acting(runtime, signed_in, csrf_token, Permission.SURVEYS_WRITE)
    back = f"/surveys/{survey_id}#kiosks"
    try:
        await caller.delete("responses", f"/v1/kiosks/{kiosk_id}")
    except ServiceError as exc:
        return back_to(runtime, back, error=f"responses refused: {exc.detail}")
    return back_to(runtime, back, done="Kiosk switched off: its link and QR code no longer open the survey.")


@router.get("/surveys/{survey_id}/kiosks/{kiosk_id}/qr.svg", summary="A kiosk's QR code (SVG)")
async def kiosk_qr(survey_id: Id, kiosk_id: Id, runtime: RuntimeDep, signed_in: SignedInDep) -> Response:
    _, caller = reading(runtime, signed_in, Permission.SURVEYS_READ)
    try:
        svg = await caller.get("responses", f"/v1/kiosks/{kiosk_id}/qr.svg")
    except ServiceError as exc:
        return Response(exc.detail, status_code=exc.status or 502, media_type="text/plain")
    return Response(
        str(svg),
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "private, max-age=300",
            "Content-Disposition": f'inline; filename="kiosk-{kiosk_id}.svg"',
        },
    )
