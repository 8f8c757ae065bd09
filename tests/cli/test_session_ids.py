"""``ktl-lsp sessions`` takes a unique id prefix wherever it takes a session id."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def test_cli_accepts_unique_prefixes(tmp_path: Path) -> None:
    base = [sys.executable, "-m", "ktl_lsp", "--store", str(tmp_path / "cli.db")]

    def ktl(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*base, *args], capture_output=True, text=True, timeout=60)
        assert (done.returncode == 0) == ok, (args, done.stderr)
        return done

    sids = []
    for text in ("one", "two"):
        run = ktl("run", "--", "sh", "-c", f"echo result={text}")
        sids.append(re.search(r"session (\S+)", run.stderr).group(1))  # type: ignore[union-attr]
    a, b = sids
    pa, pb = a[:10], b[:10]
    assert json.loads(ktl("sessions", "show", pa, "--json").stdout)["sessionId"] == a
    assert ktl("sessions", "output", pa, "--plain").stdout.splitlines() == ["result=one"]
    cast = ktl("sessions", "export", pa, "--format", "asciicast").stdout
    assert json.loads(cast.splitlines()[0])["ktl"]["session_id"] == a
    out = tmp_path / "out"
    out.mkdir()
    ktl("sessions", "export", pa, "--format", "ndjson", "-o", str(out))
    assert [p.name for p in out.iterdir()] == [f"{a}.ndjson"]
    assert ktl("sessions", "pin", pa).stdout.strip() == f"{a} pinned"
    compared = ktl("sessions", "diff", pa, pb, "--json", ok=False)  # they differ: exit 1
    diff = json.loads(compared.stdout)
    assert compared.returncode == 1 and diff["a"]["sessionId"] == a
    assert diff["exitCodes"] == [0, 0] and "+result=two" in diff["outputDiff"]

    common = next(i for i in range(4, 16) if a[:i] != b[:i])  # a prefix both start with
    ambiguous = ktl("sessions", "show", a[: common - 1], ok=False)
    assert ambiguous.returncode == 1
    assert f"ambiguous session {a[: common - 1]}: it could be {a}, {b}" in ambiguous.stderr
    short = ktl("sessions", "show", a[:3], ok=False)
    assert "a prefix needs at least 4 characters" in short.stderr
    assert "unknown session nope0" in ktl("sessions", "show", "nope0", ok=False).stderr
    assert ktl("sessions", "rm", pa, "nope0", ok=False).returncode == 1  # none deleted
    assert ktl("sessions", "rm", pb, a).stdout.split() == ["deleted", b, "deleted", a]
