"""Branding of the survey pages: defaults merged with the workspace's and the survey's own, and
the checks that keep them readable (WCAG contrast) and fast (a small inline logo)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.responses.domain.definition import FieldError
from shared.events import BrandingChanged

FONTS = {
    "system": 'system-ui,-apple-system,"Segoe UI",Roboto,sans-serif',
    "serif": 'Georgia,"Times New Roman",serif',
    "rounded": 'ui-rounded,"SF Pro Rounded","Nunito",system-ui,sans-serif',
    "mono": 'ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace',
}
TONES = ("friendly", "formal", "playful")
DEFAULT_BRANDING: dict[str, str | None] = {
    "logo": None,
    "primary_color": "#1f4fd1",
    "background_color": "#f4f5f7",
    "text_color": "#1d2330",
    "font": "system",
    "tone": "friendly",
}
EMAIL_FIELDS = ("name", "logo_url", "footer")
"""What only emails show: the company name, a logo mail clients can load (https), the footer line."""
LOGO = re.compile(r"^data:image/(png|jpeg|webp|gif|svg\+xml);base64,([A-Za-z0-9+/=]+)$")


def merge_branding(*layers: Mapping[str, object] | None) -> dict[str, str | None]:
    """Return the branding in force: defaults, then the workspace's, then the survey's own."""
    merged = dict(DEFAULT_BRANDING)
    for layer in layers:
        for k, v in (layer or {}).items():
            if k in merged and v is not None:
                merged[k] = str(v)
    return merged


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """Return the WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def on_colour(background: str) -> str:
    """Return white or near-black, whichever reads better on ``background``."""
    return "#ffffff" if contrast(background, "#ffffff") >= contrast(background, "#111111") else "#111111"


def check_branding(branding: Mapping[str, object], *, max_logo_bytes: int, at: str = "") -> list[FieldError]:
    """Return what is wrong with a branding: unreadable colours, a logo that is no small inline image."""
    errors: list[FieldError] = []
    merged = merge_branding(branding)
    text, background = str(merged["text_color"]), str(merged["background_color"])
    ratio = contrast(text, background)
    if ratio < 4.5:
        errors.append(
            FieldError(
                f"{at}text_color",
                f"text on the background has a contrast of {ratio:.1f}:1; at least 4.5:1 is needed (WCAG AA)",
            )
        )
    primary = str(merged["primary_color"])
    if contrast(primary, background) < 3:
        errors.append(
            FieldError(
                f"{at}primary_color",
                f"the primary colour on the background has a contrast of {contrast(primary, background):.1f}:1;"
                " buttons and selected answers need at least 3:1",
            )
        )
    logo = branding.get("logo")
    if isinstance(logo, str):
        m = LOGO.match(logo)
        try:
            data = base64.b64decode(m.group(2), validate=True) if m else None
        except (binascii.Error, ValueError):
            data = None
        if data is None:
            errors.append(
                FieldError(
                    f"{at}logo", "give the logo inline as data:image/(png|jpeg|webp|gif|svg+xml);base64,…"
                )
            )
        elif len(data) > max_logo_bytes:
            errors.append(
                FieldError(
                    f"{at}logo", f"the logo is {len(data)} bytes; at most {max_logo_bytes} keep pages fast"
                )
            )
    return errors


def branding_changed(
    workspace_id: str, branding: Mapping[str, Any], *, changed_at: datetime
) -> BrandingChanged:
    """Return the event that gives other services (dispatch's emails) the workspace's look: the page's
    colour, font and tone in force (defaults where unset) and the email-only fields as set."""
    page = merge_branding(branding)
    return BrandingChanged(
        workspace_id=workspace_id,
        primary_color=page["primary_color"],
        font=page["font"],
        tone=page["tone"],
        **{k: branding.get(k) for k in EMAIL_FIELDS},
        changed_at=changed_at,
    )
