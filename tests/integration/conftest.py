"""Fixtures shared by integration test modules (the session-wide stack is in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.browser import chromium as launched_chromium


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium (a playwright ``Browser``) for the browser tests of one module."""
    async with launched_chromium() as browser:
        yield browser
