"""What a test needs from the machine: in CI a missing tool is a failure, elsewhere a skip.

CI sets ``CI`` (GitHub Actions and most others set ``CI=true``); ``.ci/run`` is the entry point.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True under a CI runner (``CI`` set to anything but empty, ``0``, ``false`` or ``no``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(why: str) -> NoReturn:
    """A test cannot run here: a failure in CI, where everything it needs is installed, a skip
    on a developer's machine."""
    if in_ci():
        pytest.fail(f"{why} (CI installs it: scripts/system-deps, the test extra)")
    pytest.skip(why)
