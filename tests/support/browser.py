"""Headless Chromium for the browser tests: Debian's build (``make`` installs it), never the one playwright
would download. When it cannot start, the tests fail: they do not skip."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PHONE = {"width": 390, "height": 844}


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """Yield a launched headless Chromium (a playwright ``Browser``); closed at the end."""
    try:
        from playwright.async_api import async_playwright
    except ImportError as exc:  # pragma: no cover - a broken install must be loud
        pytest.fail(f"the browser tests need the 'playwright' package (pip install playwright): {exc}")
    async with async_playwright() as p:
        try:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:
            pytest.fail(
                f"headless Chromium did not start from {CHROMIUM} ({exc}). Install it "
                "(apt-get install chromium; `make` does this) — the browser tests do not skip."
            )
        yield browser
        await browser.close()
