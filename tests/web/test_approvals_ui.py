"""The replay UI's approval banner in a real headless Chromium against a real gateway: the
question a session waits on shows on its page and on the list, and a click answers it."""

from __future__ import annotations

import pytest

from tests.gateway.conftest import Served, served
from tests.gateway.test_approvals import waiting_session
from tests.web.ui_driver import Browser

__all__ = ["served"]

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

BANNER = "[...document.querySelectorAll('.ui-approval')]"


async def test_banner_shows_the_question_and_a_click_answers_it(
    served: Served, browser: Browser
) -> None:
    b = browser
    live, got = waiting_session(served)
    code = served.gateway.auth.mint_code()
    await b.call("goto", url=f"{served.gateway.base_url}/ui/login?code={code}&next=/ui/")
    await b.wait(f"{BANNER}.length === 1")
    listed = await b.eval(f"{BANNER}.map(r => [r.dataset.session, r.textContent])")
    assert listed == [[live.id, f"{live.id} Apply 3 objects to prod-eu / payments?ApplyCancel"]]
    # the list shows the waiting session as paused
    badge = f"document.querySelector('tr[data-session-id=\"{live.id}\"] .ui-badge')"
    await b.wait(f"{badge} && {badge}.textContent === 'paused'")

    await b.call("goto", url=f"{served.gateway.base_url}/ui/s/{live.id}")
    await b.wait(f"{BANNER}.length === 1")
    assert await b.eval("document.querySelector('.ui-approval-question').textContent") == (
        "Apply 3 objects to prod-eu / payments?"
    )
    await b.eval("document.querySelector('.ui-approval [data-choice=\"Apply\"]').click()")
    q = await got
    assert q.answer == "Apply" and q.who is not None
    assert q.who.startswith("replay UI (gateway, 127.0.0.1")
    await b.wait(f"{BANNER}.length === 0")
    assert (await live.done).state.value == "done"
