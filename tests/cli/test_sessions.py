"""`ktl-lsp run` and `ktl-lsp sessions ...` against a real store file."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from tests.cli.conftest import into_a_closed_pipe, ktl_lsp


def record(store: Path, *argv: str) -> str:
    """Runs ARGV as a recorded session with `ktl-lsp run`; returns its id."""
    ran = ktl_lsp("--store", str(store), "run", "--quiet", "--", *argv)
    found = re.search(r"session (\S+)", ran.stderr)
    assert found, ran.stderr
    return found.group(1)


def test_cli_run_and_sessions(tmp_path: Path) -> None:
    store = tmp_path / "cli.db"
    base = [sys.executable, "-m", "ktl_lsp", "--store", str(store)]
    run = subprocess.run(
        [*base, "run", "--title", "greet", "--", "sh", "-c", "echo hi there; exit 4"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 4
    assert "hi there" in run.stdout
    sid = re.search(r"session (\S+)", run.stderr).group(1)  # type: ignore[union-attr]
    listed = json.loads(
        subprocess.run(
            [*base, "sessions", "list", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [s["sessionId"] for s in listed["sessions"]] == [sid]
    assert listed["sessions"][0]["title"] == "greet" and listed["sessions"][0]["exitCode"] == 4
    out = subprocess.run(
        [*base, "sessions", "output", sid, "--plain"], capture_output=True, check=True
    )
    assert out.stdout == b"hi there\r\n"
    missing = subprocess.run([*base, "sessions", "show", "nope"], capture_output=True, text=True)
    assert missing.returncode == 1 and "unknown session nope" in missing.stderr

    def ktl(*args: str) -> str:
        return subprocess.run([*base, *args], capture_output=True, text=True, check=True).stdout

    second = subprocess.run(
        [*base, "run", "--", "sh", "-c", "echo hi there"], capture_output=True, text=True
    )
    sid2 = re.search(r"session (\S+)", second.stderr).group(1)  # type: ignore[union-attr]
    table = ktl("sessions", "list")
    assert table.splitlines()[0].split()[:5] == ["ID", "STARTED", "STATE", "EXIT", "DURATION"]
    assert sid in table and sid2 in table and "greet" in table
    assert "pinned" in ktl("sessions", "pin", sid)
    assert json.loads(ktl("sessions", "show", sid, "--json"))["pinned"] is True
    differ = ktl_lsp("--store", str(store), "sessions", "diff", sid, sid2, "--json")
    assert differ.returncode == 1  # the exit codes differ
    diff = json.loads(differ.stdout)
    assert diff["exitCodes"] == [4, 0] and diff["outputDiff"] == ""
    pruned = json.loads(ktl("sessions", "prune", "--max-sessions", "1", "--json"))
    assert pruned["deleted"] == 1  # sid2 goes: sid is pinned
    assert ktl("sessions", "rm", sid).strip() == f"deleted {sid}"
    assert ktl("sessions", "list").strip() == "no sessions"


def test_cli_export(tmp_path: Path) -> None:
    store = tmp_path / "cli.db"
    base = [sys.executable, "-m", "ktl_lsp", "--store", str(store)]
    run = subprocess.run(
        [*base, "run", "--", "echo", "exported"], capture_output=True, text=True, check=True
    )
    sid = run.stderr.split("session ")[1].split()[0]
    ndjson = subprocess.run(
        [*base, "sessions", "export", sid], capture_output=True, check=True
    ).stdout
    frames = [json.loads(line) for line in ndjson.splitlines()]
    assert any(base64.b64decode(f.get("raw", "")) == b"exported\r\n" for f in frames)
    target = tmp_path / "out.cast"
    subprocess.run(
        [*base, "sessions", "export", sid, "-f", "asciicast", "-o", str(target)],
        check=True,
        capture_output=True,
    )
    assert json.loads(target.read_text().splitlines()[0])["version"] == 2
    bad = subprocess.run(
        [*base, "sessions", "export", sid, "-o", "/proc/nope/x.ndjson"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "ktl-lsp:" in bad.stderr


def test_a_reader_that_leaves_ends_the_output_quietly(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    sid = record(store, "seq", "20000")
    for args in (["list"], ["output", sid], ["show", sid], ["list", "--json"]):
        gone = into_a_closed_pipe("--store", str(store), "sessions", *args)
        assert (gone.returncode, gone.stderr) == (141, ""), args


def test_a_store_that_is_not_one_is_an_error_not_an_empty_list(tmp_path: Path) -> None:
    store = tmp_path / "corrupt.db"
    store.write_bytes(b"definitely not sqlite " * 500)
    listed = ktl_lsp("--store", str(store), "sessions", "list")
    assert (listed.returncode, listed.stdout) == (1, "")
    assert listed.stderr == (
        f"ktl-lsp: {store} is not a usable session store (file is not a database); move it "
        "aside or choose another path with --store / KTL_LSP_STORE\n"
    )


def test_prune_says_what_it_did(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    for word in ("one", "two", "three"):
        record(store, "echo", word)
    pruned = ktl_lsp("--store", str(store), "sessions", "prune", "--max-sessions", "1")
    assert (pruned.returncode, pruned.stderr) == (0, "")
    size = r"\d+\.\d [kMG]B"
    summary = rf"deleted 2 sessions, trimmed 0 frames; store size {size} -> {size}\n"
    assert re.fullmatch(summary, pruned.stdout), pruned.stdout
    again = ktl_lsp("--store", str(store), "sessions", "prune", "--max-sessions", "1")
    assert again.stdout.startswith("deleted 0 sessions, trimmed 0 frames; store size ")


def test_since_takes_times_ago_and_dates_and_says_what_it_takes(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    sid = record(store, "true")

    def since(when: str) -> list[str]:
        out = ktl_lsp("--store", str(store), "sessions", "list", "--json", "--since", when)
        assert out.returncode == 0, out.stderr
        return [s["sessionId"] for s in json.loads(out.stdout)["sessions"]]

    later = (date.today() + timedelta(days=2)).isoformat()
    assert since("30m") == since("1w") == since("yesterday") == [sid]
    assert since(later) == since(f"{later}T00:00:00Z") == []
    bad = ktl_lsp("--store", str(store), "sessions", "list", "--since", "last week")
    assert bad.returncode == 2 and "Invalid isoformat" not in bad.stderr
    assert "argument --since: cannot read 'last week' as a time: use a time ago such as 30m" in (
        bad.stderr
    )


def test_diff_exits_as_diff_does(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    hello, hello_again, bye = (record(store, "echo", word) for word in ("hi", "hi", "bye"))
    failed = record(store, "sh", "-c", "echo hi; exit 1")

    def diff(*args: str) -> subprocess.CompletedProcess[str]:
        return ktl_lsp("--store", str(store), "sessions", "diff", *args)

    same = diff(hello, hello_again)
    assert same.returncode == 0 and "(no difference in output)" in same.stdout
    assert diff(hello, hello_again, "--json").returncode == 0
    different = diff(hello, bye)
    assert different.returncode == 1 and "+bye" in different.stdout
    assert diff(hello, bye, "--json").returncode == 1
    assert diff(hello, failed).returncode == 1  # same output, another exit code
    missing = diff(hello, "nope")
    assert missing.returncode == 2 and "unknown session nope" in missing.stderr
    assert (
        ktl_lsp("--store", str(tmp_path / "none.db"), "sessions", "diff", "a", "b").returncode == 2
    )
