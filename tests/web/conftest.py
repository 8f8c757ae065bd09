"""The headless Chromium page shared by the replay UI's tests (tests/web/ui_driver.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.needs import unavailable
from tests.web.ui_driver import Browser, missing


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    """Skipped locally without node/chromium; a failure under CI=true."""
    why = missing()
    if why:
        unavailable(f"the UI test needs {why}")
    b = await Browser.start()
    try:
        yield b
    finally:
        await b.close()
