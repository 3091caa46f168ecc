"""What every page of the web app shares: the navigation a role sees, the signed-in person or the way to
sign in, the permission a page needs (hidden from the menu and refused when typed in; the services
refuse the calls regardless), and the query string of the filters that stay in the URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse

from services.console.handlers.accounts import SignedIn
from services.console.settings import ConsoleSettings
from services.console.web import render
from shared.access import PERMISSIONS, Permission
from shared.errors import Forbidden


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str
    needs: Permission | None


NAV = (
    NavItem("/overview", "Overview", Permission.METRICS_READ),
    NavItem("/cases", "Cases", Permission.CASES_READ),
    NavItem("/explore", "Explore", Permission.METRICS_READ),
    NavItem("/responses", "Responses", Permission.RESPONSES_READ),
    NavItem("/surveys", "Surveys", Permission.SURVEYS_READ),
    NavItem("/automation", "Automation", Permission.RULES_READ),
    NavItem("/settings", "Settings", Permission.SETTINGS_READ),
    NavItem("/", "Account", None),
)


class NotSignedIn(Exception):
    """The page needs a session; the handler in ``app.py`` sends the browser to sign in."""


def can(person: SignedIn, permission: Permission) -> bool:
    return permission in PERMISSIONS[person.role]


def need(person: SignedIn | None, permission: Permission) -> SignedIn:
    """Return the person when their role has ``permission``; raise ``NotSignedIn`` or a 403 page."""
    if person is None:
        raise NotSignedIn()
    if not can(person, permission):
        raise Forbidden(
            f"Your role '{person.role}' may not open this page (it needs {permission.value}).",
            field="role",
        )
    return person


def page(
    template: str, request: Request, person: SignedIn, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page of the app with the navigation ``person``'s role sees."""
    path = request.url.path
    nav = [
        (item, path == item.path or (item.path != "/" and path.startswith(item.path + "/")))
        for item in NAV
        if item.needs is None or can(person, item.needs)
    ]
    perms = {p.value.replace(":", "_").replace("-", "_") for p in PERMISSIONS[person.role]}
    return render(template, status=status, signed_in=person, nav=nav, may=perms, path=path, **context)


def query(**params: Any) -> str:
    """Return ``?a=1&b=2`` of the params that have a value (lists repeat their key)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if v not in (None, "", False):
                pairs.append((key, str(v)))
    return "?" + urlencode(pairs) if pairs else ""


FLASH = "console-flash.v1"


def flash(settings: ConsoleSettings, **messages: str) -> dict[str, str]:
    """Query parameters that carry a message to the page a form redirects to, each with its MAC, so that
    a link made elsewhere cannot put words on a page (``flashed`` shows only a signed one)."""
    out: dict[str, str] = {}
    for key, text in messages.items():
        out[key], out[f"{key}_sig"] = text, settings.keyring.mac(FLASH, f"{key}:{text}", length=16)
    return out


def flashed(request: Request, settings: ConsoleSettings, key: str) -> str | None:
    """The message ``flash`` put in this page's URL under ``key``, or None (absent, or not signed here)."""
    text, mac = request.query_params.get(key), request.query_params.get(f"{key}_sig")
    if not text or not mac:
        return None
    return text if settings.keyring.matches(FLASH, f"{key}:{text}", mac, length=16) else None
