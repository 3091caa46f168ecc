"""A rotation of ``CLOSELOOP_SECRET_KEY``: while the old value is ``CLOSELOOP_SECRET_KEY_PREVIOUS``, what it
signed still works — API keys, survey links sent before the rotation, unsubscribe links — and what is new
is signed with the new value. Without the previous secret, the old links stop working."""

from __future__ import annotations

import secrets

import pytest

from services.responses.app import create_app
from services.responses.settings import ResponsesSettings
from tests.integration.test_responses import SURVEY
from tests.support.access import key_auth
from tests.support.responses import create_survey, link_for
from tests.support.stack import running

pytestmark = pytest.mark.integration
NEW_SECRET = "rotated-" + secrets.token_hex(20)


async def test_survey_links_and_keys_of_the_previous_secret_work_during_the_rotation_window(
    settings_for, workspace, stack_env
):
    old_key = key_auth(workspace)  # signed with the tests' secret: the one being rotated out
    rotating = settings_for(
        ResponsesSettings,
        role="api",
        secret_key=NEW_SECRET,
        secret_key_previous=stack_env["CLOSELOOP_SECRET_KEY"],
    )
    async with running(create_app(rotating)) as client:
        made = await create_survey(client, old_key, SURVEY)
        token, _ = link_for(workspace, made["id"])  # sent before the rotation
        opened = await client.get(f"/v1/public/surveys/{token}")
        assert opened.status_code == 200, opened.text
        page = await client.get(f"/s/{token}")
        assert page.status_code == 200 and "How likely are you to recommend us?" in page.text
    after = settings_for(ResponsesSettings, role="api", secret_key=NEW_SECRET)
    async with running(create_app(after)) as client:
        assert (await client.get(f"/v1/public/surveys/{token}")).status_code == 404
        refused = await client.get("/v1/surveys", headers=old_key)
        assert refused.status_code == 401 and "signature does not match" in refused.json()["detail"]


async def test_unsubscribe_links_of_the_previous_secret_work_during_the_rotation_window(
    settings_for, stack_env
):
    from services.dispatch.app import create_app as dispatch_app
    from services.dispatch.handlers.links import UNSUBSCRIBE_PURPOSE
    from services.dispatch.settings import DispatchSettings
    from shared.security import sign_token

    old = stack_env["CLOSELOOP_SECRET_KEY"]
    token = sign_token(old, UNSUBSCRIBE_PURPOSE, {"ws": "ws-x", "con": "c-1", "inv": "i-1"}, ttl_s=3600)
    rotating = settings_for(DispatchSettings, role="api", secret_key=NEW_SECRET, secret_key_previous=old)
    async with running(dispatch_app(rotating)) as client:
        page = await client.get(f"/u/{token}")
        assert page.status_code == 200 and "Unsubscribe" in page.text
    async with running(
        dispatch_app(settings_for(DispatchSettings, role="api", secret_key=NEW_SECRET))
    ) as client:
        assert (await client.get(f"/u/{token}")).status_code == 404
