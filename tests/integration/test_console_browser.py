"""The console's pages in headless Chromium, at a phone's width (390 px) and a desktop's (1440 px):
sign in by keyboard, see the workspace and role, create and revoke a key, sign out. The page loads
nothing the CSP refuses and fits the screen; screenshots go to the test's temporary directory
(``CLOSELOOP_SCREENSHOTS`` keeps them elsewhere).

Needs Chromium at /usr/bin/chromium (``make`` installs it); without it these tests fail, never skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from tests.support.console import FAST_HASHING, create_workspace
from tests.support.responses import CHROMIUM, CHROMIUM_ARGS, serve
from tests.support.stack import settings_from

pytestmark = pytest.mark.integration
WIDTHS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1440, "height": 900}}


@pytest.fixture(scope="module")
async def base_url(stack_env: dict[str, str]) -> AsyncIterator[str]:
    settings = settings_from(ConsoleSettings, stack_env, **FAST_HASHING)
    async with serve(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - a broken install must be loud
        pytest.fail(f"the browser tests need the 'playwright' package: {exc}")
    async with async_playwright() as p:
        try:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(
                f"headless Chromium did not start from {CHROMIUM} ({exc}); install it (apt-get install chromium)"
            )
        yield browser
        await browser.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CLOSELOOP_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.parametrize("size", list(WIDTHS))
async def test_sign_in_create_and_revoke_a_key_and_sign_out_by_keyboard(
    base_url, chromium, workspace, shots, size
):
    async with httpx.AsyncClient(base_url=base_url) as http:
        made = await create_workspace(
            http, workspace, owner=f"owner-{workspace}@example.com", name="Ada Owner"
        )
    context = await chromium.new_context(viewport=WIDTHS[size])
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    try:
        answer = await page.goto(f"{base_url}/")
        assert answer is not None and page.url.endswith("/sign-in")
        headers = answer.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
        await page.screenshot(path=shots / f"sign-in-{size}.png", full_page=True)
        await page.keyboard.press("Tab")  # the brand link
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "email"
        await page.keyboard.type(made["owner_email"])
        await page.keyboard.press("Tab")
        await page.keyboard.type("not my password at all")
        await page.keyboard.press("Enter")
        await page.wait_for_load_state()
        assert "not right" in await page.inner_text("[role=alert]")
        await page.screenshot(path=shots / f"sign-in-refused-{size}.png", full_page=True)
        problems.clear()  # Chromium logs the refused sign-in's 401
        await page.fill("#password", made["password"])
        await page.press("#password", "Enter")
        await page.wait_for_url(f"{base_url}/")
        status = await page.inner_text("main [role=status]")
        assert f"You are signed in to {workspace} as owner" in status
        await page.fill("#label", "Zapier")
        await page.select_option("#role", "integration")
        await page.click("text=Create key")
        secret = (await page.inner_text("#secret")).strip()
        assert secret.startswith(f"clk_{workspace}.") and ".integration." in secret
        await page.screenshot(path=shots / f"key-created-{size}.png", full_page=True)
        await page.click("text=Back to the console")
        await page.wait_for_url(f"{base_url}/")
        assert "Zapier" in await page.inner_text("table")
        await page.screenshot(path=shots / f"home-{size}.png", full_page=True)
        fits = await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert fits, "the page is wider than the screen"
        await page.click("button[aria-label='Revoke the key Zapier']")
        await page.wait_for_url(f"{base_url}/#keys")
        assert "Zapier" not in await page.inner_text("main")
        await page.click("header >> text=Sign out")
        await page.wait_for_url(f"{base_url}/sign-in")
        assert problems == [], problems
    finally:
        await context.close()
