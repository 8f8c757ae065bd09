"""`ktl-lsp run`: what the command's exit status and output say."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.conftest import into_a_closed_pipe, ktl_lsp


def test_a_reader_that_leaves_stops_the_copy_not_the_recording(tmp_path: Path) -> None:
    store = str(tmp_path / "s.db")
    gone = into_a_closed_pipe("--store", store, "run", "--", "seq", "20000")
    assert gone.returncode == 0 and "Traceback" not in gone.stderr, gone.stderr
    sid = re.search(r"session (\S+) done", gone.stderr).group(1)  # type: ignore[union-attr]
    recorded = ktl_lsp("--store", store, "sessions", "output", sid, "--plain").stdout
    assert recorded.splitlines()[-1] == "20000"
