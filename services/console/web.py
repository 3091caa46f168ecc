"""The console's pages: Jinja2 templates, the headers every HTML answer carries, cookies and CSRF.

Every HTML response carries a strict Content-Security-Policy (nothing but this origin's stylesheet and
its one script, ``/console.js``, no inline script or style; forms post only here; never framed), ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer`` (links carry tokens) and ``Cache-Control: no-store``.

CSRF: a signed-in form carries the session's synchronizer token (``sessions.csrf_token``); a form
before sign-in carries the value of the ``closeloop_csrf`` cookie (double submit). A missing or wrong
token is refused with 403.
"""

from __future__ import annotations

import hmac
from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from services.console.domain.sessions import new_token
from services.console.settings import ConsoleSettings
from shared.errors import Forbidden

SESSION_COOKIE = "closeloop_session"
CSRF_COOKIE = "closeloop_csrf"
SSO_COOKIE = "closeloop_sso"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@cache
def templates() -> Environment:
    return Environment(
        loader=PackageLoader("services.console", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Return the page ``template`` rendered with ``context``, with the security headers."""
    html = templates().get_template(template).render(code=status, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def redirect(url: str) -> RedirectResponse:
    """Return a 303 to ``url`` (after a form post: the browser GETs it)."""
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


def is_https(request: Request, settings: ConsoleSettings) -> bool:
    """Whether cookies get ``Secure``: by setting, or when the request came over HTTPS."""
    if settings.secure_cookies != "auto":
        return settings.secure_cookies == "always"
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(
    response: Response,
    request: Request,
    settings: ConsoleSettings,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
) -> None:
    """Set an ``HttpOnly``, ``SameSite=Lax`` cookie on the whole console, ``Secure`` behind HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=is_https(request, settings),
    )


def clear_cookie(response: Response, request: Request, settings: ConsoleSettings, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=is_https(request, settings))


def home_signed_in(request: Request, settings: ConsoleSettings, session_token: str) -> Response:
    """Return the redirect home that sets the cookie of the session just opened (kept as long as a
    session may last)."""
    response = redirect("/")
    set_cookie(
        response,
        request,
        settings,
        SESSION_COOKIE,
        session_token,
        max_age=settings.session_absolute_hours * 3600,
    )
    return response


def anonymous_csrf(request: Request) -> str:
    """Return the double-submit token for a form before sign-in: the cookie's, or a new one."""
    return request.cookies.get(CSRF_COOKIE) or new_token()


def anonymous_form(
    template: str, request: Request, settings: ConsoleSettings, **context: Any
) -> HTMLResponse:
    """Render a form shown before sign-in with its CSRF token (and the cookie that matches it)."""
    token = anonymous_csrf(request)
    status = context.pop("status", 200)
    response = render(template, status=status, csrf_token=token, **context)
    if request.cookies.get(CSRF_COOKIE) != token:
        set_cookie(response, request, settings, CSRF_COOKIE, token)
    return response


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def check_anonymous_csrf(request: Request, given: str | None) -> None:
    """Refuse (403) a form posted before sign-in whose token is not its cookie's."""
    if not same_token(request.cookies.get(CSRF_COOKIE), given):
        raise CsrfRefused()


def check_session_csrf(expected: str, given: str | None) -> None:
    """Refuse (403) a signed-in form or call without its session's token."""
    if not same_token(expected, given):
        raise CsrfRefused()


class CsrfRefused(Forbidden):
    code, title = "csrf", "Form expired or from another site"

    def __init__(self) -> None:
        super().__init__(
            "The form's security token is missing or does not match (the form is older than your "
            "session, or another site sent it). Reload the page and try again.",
            field=CSRF_FIELD,
        )


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="6" fill="none" '
    'stroke="#0b5cad" stroke-width="3"/></svg>'
)

CSS = """
:root{color-scheme:light;--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--accent:#0b5cad;--bad:#b42318;
--good:#146c2e;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);padding:.75rem 1rem;display:flex;gap:1rem;
align-items:center;justify-content:space-between;flex-wrap:wrap}
header .brand{font-weight:700;text-decoration:none;color:var(--ink)}
main{max-width:56rem;margin:0 auto;padding:1.5rem 1rem 3rem}
main.narrow{max-width:26rem}
h1{font-size:1.5rem;margin:0 0 1rem}
h2{font-size:1.15rem;margin:2rem 0 .75rem}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1.25rem}
label{display:block;font-weight:600;margin:.9rem 0 .3rem}
input,select{width:100%;font:inherit;padding:.55rem .65rem;border:1px solid #8c959f;border-radius:6px;background:#fff;color:var(--ink)}
input:focus,select:focus,button:focus,a:focus{outline:3px solid #f2b600;outline-offset:2px}
button,.button{display:inline-block;font:inherit;font-weight:600;padding:.55rem 1rem;margin-top:1rem;border-radius:6px;
border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer;text-decoration:none}
button.secondary{background:#fff;color:var(--accent)}
button.danger{background:#fff;color:var(--bad);border-color:var(--bad);margin:0;padding:.3rem .7rem}
.hint{color:var(--muted);font-size:.9rem;margin:.3rem 0 0}
.error{color:var(--bad);font-weight:600}
[aria-invalid=true]{border-color:var(--bad);border-width:2px}p.error{margin:.3rem 0 0;font-size:.9rem}
.card.channel{margin-top:1.5rem}.card.channel form.remove{margin-top:1rem}
.notice{border-left:4px solid var(--accent);background:#eef5fc;padding:.75rem 1rem;border-radius:4px}
.notice.bad{border-color:var(--bad);background:#fdf0ef}
.secret{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;word-break:break-all;background:#fff8e1;
border:1px solid #e7c66b;padding:.75rem;border-radius:6px}
.links{margin-top:1.25rem;display:flex;gap:1rem;flex-wrap:wrap}
a{color:var(--accent)}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid var(--line);border-radius:8px}
th,td{text-align:left;padding:.5rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.85rem;color:var(--muted);font-weight:600}
td code{word-break:break-all}
.inline{display:inline}
table+form.card,p+form.card,form.card+form.card,details.card+h3{margin-top:1.5rem}
#live+.actions{margin-top:1rem}
details.card{margin-top:.75rem;padding:.75rem 1.25rem}details.card summary{cursor:pointer;font-weight:600}details.card[open] summary{margin-bottom:.75rem}
.card h2{margin-top:0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:0 1rem}
@media (max-width:40rem){table,thead,tbody,tr,th,td{display:block}thead{display:none}
tr{border-bottom:1px solid var(--line);padding:.4rem 0}td{border:0;padding:.2rem .6rem}
td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:var(--muted)}}
main.wide{max-width:80rem}
.skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5rem 1rem;z-index:2}
.skip:focus{left:.5rem}
header nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem .9rem}
header nav a{color:var(--ink);text-decoration:none;padding:.2rem 0;border-bottom:3px solid transparent}
header nav a[aria-current=page]{border-color:var(--accent);font-weight:600}
h1 .hint{font-weight:400;font-size:1rem;display:block}
h3{font-size:1rem;margin:0 0 .4rem}
.muted{color:var(--muted)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(14rem,1fr));gap:1rem}
.score .big{font-size:2.2rem;font-weight:700;margin:.2rem 0}
.score .big.muted{font-size:1.2rem}
.big-inline{font-size:1.6rem}
.facts{margin:.2rem 0;color:var(--muted);font-size:.9rem}
.change{margin:.4rem 0 0;font-size:.9rem}
.change.up{color:var(--good)}.change.down{color:var(--bad)}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1rem 2rem}
@media (max-width:40rem){.two{grid-template-columns:1fr}}
.two>*,.cards>*{min-width:0}
.chart-card{margin:0;padding:.75rem}
svg.chart{width:100%;height:auto;display:block;max-height:24rem}
svg.chart:not(.trend){max-width:46rem}
.chart-card{overflow-x:auto}
@media (max-width:40rem){.chart-card svg.chart{min-width:34rem}
table.matrix{display:table}table.matrix thead{display:table-header-group}table.matrix tbody{display:table-row-group}
table.matrix tr{display:table-row}table.matrix th,table.matrix td{display:table-cell;padding:.4rem}
table.matrix td[data-label]::before{content:none}}
.tabs{display:flex;gap:.5rem;flex-wrap:wrap;margin:0 0 .5rem}
.tabs a{padding:.25rem .7rem;border:1px solid var(--line);border-radius:999px;background:#fff;text-decoration:none}
.tabs a.on{background:var(--accent);color:#fff;border-color:var(--accent)}
.matrix td.cell{width:40%}
.matrix td.pure{background:#e6f4ea}.matrix td.disloyal{background:#fdecea}
.matrix td.false,.matrix td.trapped{background:#fff8e1}
.comments{list-style:none;padding:0;display:grid;gap:.75rem}
.comments .card{padding:.75rem 1rem}
.quote{margin:0 0 .3rem}
.label-negative,.status-breached,.overdue{color:var(--bad);font-weight:600}
.label-positive,.status-met,.status-on_track{color:var(--good);font-weight:600}
.filters{margin-bottom:1rem}
.filters button{margin-top:.75rem}
.filters .grid{grid-template-columns:repeat(auto-fit,minmax(10rem,1fr))}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
.actions button{margin-top:0}
textarea{width:100%;font:inherit;padding:.55rem .65rem;border:1px solid #8c959f;border-radius:6px;min-height:5rem}
textarea:focus{outline:3px solid #f2b600;outline-offset:2px}
.pill{display:inline-block;padding:0 .5rem;border-radius:999px;background:#eaeef2;font-size:.85rem}
.pill.urgent,.pill.high{background:#fdecea;color:var(--bad)}
dl.facts-list{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;margin:0}
dl.facts-list dt{font-weight:600;color:var(--muted)}dl.facts-list dd{margin:0;min-width:0;overflow-wrap:anywhere}
.warning{border-left:4px solid #9a6700;background:#fff8e1;padding:.4rem .75rem;margin:.4rem 0;border-radius:4px}
.check{display:flex;gap:.5rem;align-items:center;font-weight:400;margin:.3rem 0}
section>h3{margin:1.75rem 0 .5rem}
details.logic{margin:.6rem 0 0}details.logic summary{cursor:pointer;font-weight:600}
.swatch{vertical-align:middle;border:1px solid var(--line)}
input[type=color]{height:2.75rem;padding:.2rem;cursor:pointer}.kiosks p{overflow-wrap:anywhere}
img.qr{width:11rem;height:11rem;display:block;background:#fff;margin:.5rem 0}
.kiosks{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr));gap:1rem}
pre.preview-text{white-space:pre-wrap;overflow-wrap:anywhere;font:inherit;margin:0}
.check input,input[type=checkbox]{width:auto}
caption{text-align:left;padding:.4rem .6rem}
@media (max-width:40rem){caption{display:block}}
ol.questions{display:grid;gap:.75rem;padding-left:1.5rem}
pre.email-text{white-space:pre-wrap;word-break:break-word;font:inherit;font-size:.9rem;margin:0}
fieldset{border:1px solid var(--line);border-radius:8px;margin:1rem 0;padding:.75rem 1rem;background:#fff}
@media print{header,.filters,.skip{display:none}}
""".strip()
