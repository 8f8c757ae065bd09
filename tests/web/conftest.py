"""The headless Chromium page shared by the replay UI's tests (tests/web/ui_driver.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.web.ui_driver import Browser, missing


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    """Skipped locally without node/chromium; a failure under CI=true."""
    why = missing()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the UI test needs {why}")
        pytest.skip(f"missing {why}")
    b = await Browser.start()
    try:
        yield b
    finally:
        await b.close()
