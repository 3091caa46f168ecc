"""The console's routes: pages (sign-in, home, keys), password links and invitations, single sign-on,
and the JSON API under /v1."""

from fastapi import APIRouter

from services.console.api import (
    admin,
    automation,
    cases,
    explore,
    kiosks,
    links,
    overview,
    pages,
    settings_channels,
    settings_edit,
    settings_policies,
    settings_teams,
    sso,
    surveys,
    v1,
)

routers: list[APIRouter] = [
    pages.router,
    overview.router,
    cases.router,
    explore.router,
    surveys.router,
    kiosks.router,
    automation.router,
    admin.router,
    settings_channels.router,
    settings_edit.router,
    settings_policies.router,
    settings_teams.router,
    links.router,
    sso.router,
    v1.router,
]
