"""Terminal parity: what a program sees in ktl.run is what it sees in a real terminal."""

from __future__ import annotations

import asyncio

from tests.conftest import Ktl
from tests.lsp.features.helpers import frames, output_text, running_session, wait_for_text


async def test_child_sees_a_tty(ktl: Ktl) -> None:
    script = "import sys,os; print(sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty(), os.environ['TERM'])"
    result = await ktl.cmd("ktl.run", {"argv": ["python3", "-c", script]})
    assert result["state"] == "done"
    assert await output_text(ktl, result["sessionId"]) == "True True True xterm-256color\r\n"


async def test_colors_kept_in_data_and_stripped_in_progress(ktl: Ktl) -> None:
    cmd = "for i in 1 2 3 4 5; do printf '\\033[1;32mstep %s\\033[0m\\n' $i; sleep 0.15; done"
    result = await ktl.cmd("ktl.run", {"command": cmd})
    sid = result["sessionId"]
    assert "\x1b[1;32mstep 1\x1b[0m" in ktl.rec.text(sid)
    token = f"ktl-session-{sid}"
    reports = ktl.client.progress_reports[token]
    assert reports[0].kind == "begin" and reports[0].cancellable
    messages = [r.message for r in reports if r.kind == "report"]
    assert messages, "expected progress reports while the command ran"
    assert all("\x1b" not in m for m in messages)
    assert any(m.startswith("step ") for m in messages)
    assert reports[-1].kind == "end" and reports[-1].message.startswith("exit 0 in ")


async def test_carriage_return_progress_bar(ktl: Ktl) -> None:
    cmd = "for i in 1 2 3 4; do printf '\\rdownloading %s/4' $i; sleep 0.15; done; printf '\\n'"
    result = await ktl.cmd("ktl.run", {"command": cmd})
    sid = result["sessionId"]
    raw = await output_text(ktl, sid)
    assert raw == "\rdownloading 1/4\rdownloading 2/4\rdownloading 3/4\rdownloading 4/4\r\n"
    messages = [
        r.message for r in ktl.client.progress_reports[f"ktl-session-{sid}"] if r.kind == "report"
    ]
    # The progress shows what the terminal shows: the newest redraw, never the joined line.
    assert messages and all(
        m.startswith("downloading ") and len(m) == len("downloading 1/4") for m in messages
    )


async def test_ctrl_c_ends_sleep_with_int(ktl: Ktl) -> None:
    task = ktl.start("ktl.run", {"argv": ["sleep", "30"]})
    sid = await running_session(ktl)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await ktl.cmd("ktl.session.signal", {"sessionId": sid, "signal": "INT"})
    result = await asyncio.wait_for(task, 5)
    assert loop.time() - t0 < 3
    assert (result["signal"], result["exitCode"]) == ("INT", 130)


async def test_password_prompt_input_is_not_recorded(ktl: Ktl) -> None:
    script = "read -r -s -p 'Password: ' pw; echo; echo \"got ${#pw} characters\""
    task = ktl.start("ktl.run", {"argv": ["bash", "-c", script]})
    sid = await running_session(ktl)
    await wait_for_text(ktl, sid, "Password: ")
    await ktl.cmd("ktl.session.input", {"sessionId": sid, "data": "hunter2-secret\r"})
    result = await asyncio.wait_for(task, 5)
    assert result["state"] == "done"
    recorded = await frames(ktl, sid)
    assert "got 14 characters" in await output_text(ktl, sid)
    assert not any("hunter2" in f["data"] for f in recorded)
    hidden = [f for f in recorded if f["type"] == "event" and '"input":"hidden"' in f["data"]]
    assert hidden and '"bytes":15' in hidden[0]["data"]


async def test_echoed_input_is_recorded(ktl: Ktl) -> None:
    task = ktl.start("ktl.run", {"argv": ["bash", "-c", 'read -r line; echo "[$line]"']})
    sid = await running_session(ktl)
    await ktl.cmd("ktl.session.input", {"sessionId": sid, "data": "visible\r"})
    await asyncio.wait_for(task, 5)
    inputs = [f["data"] for f in await frames(ktl, sid) if f["type"] == "input"]
    assert inputs == ["visible\r"]


async def test_unicode_both_ways(ktl: Ktl) -> None:
    task = ktl.start(
        "ktl.run", {"argv": ["bash", "-c", "read -r line; printf '%s|%s\\n' \"$line\" 'ñ✓🚀'"]}
    )
    sid = await running_session(ktl)
    await ktl.cmd("ktl.session.input", {"sessionId": sid, "data": "héllo wörld 日本\r"})
    result = await asyncio.wait_for(task, 5)
    assert result["state"] == "done"
    text = await output_text(ktl, sid)
    assert "héllo wörld 日本|ñ✓🚀\r\n" in text
    assert "héllo wörld 日本|ñ✓🚀" in ktl.rec.text(sid)


async def test_split_multibyte_output_survives(ktl: Ktl) -> None:
    # Write a 4-byte character one byte at a time with pauses, so reads split it.
    py = (
        "import os,time\n"
        "for b in '🚀é'.encode():\n"
        "    os.write(1, bytes([b])); time.sleep(0.03)\n"
        "os.write(1, b'\\n')"
    )
    result = await ktl.cmd("ktl.run", {"argv": ["python3", "-c", py]})
    sid = result["sessionId"]
    assert await output_text(ktl, sid) == "🚀é\r\n"
    assert ktl.rec.text(sid) == "🚀é\r\n"
    assert "\ufffd" not in ktl.rec.text(sid)


async def test_resize_reaches_the_child(ktl: Ktl) -> None:
    py = (
        "import os, signal, sys, time\n"
        "def size(*_):\n"
        "    s = os.get_terminal_size(0); print(f'size {s.lines} {s.columns}', flush=True)\n"
        "signal.signal(signal.SIGWINCH, size)\n"
        "size()\n"
        "sys.stdin.readline()\n"
    )
    task = ktl.start("ktl.run", {"argv": ["python3", "-c", py], "cols": 80, "rows": 24})
    sid = await running_session(ktl)
    await wait_for_text(ktl, sid, "size 24 80")
    await ktl.cmd("ktl.session.resize", {"sessionId": sid, "cols": 132, "rows": 43})
    await wait_for_text(ktl, sid, "size 43 132")  # printed from the SIGWINCH handler
    await ktl.cmd("ktl.session.input", {"sessionId": sid, "data": "\r"})
    await asyncio.wait_for(task, 5)
    task = ktl.start("ktl.run", {"argv": ["stty", "size"], "cols": 101, "rows": 17})
    assert await output_text(ktl, (await task)["sessionId"]) == "17 101\r\n"
    resizes = [f["data"] for f in await frames(ktl, sid) if f["type"] == "resize"]
    assert resizes == ['{"cols":80,"rows":24}', '{"cols":132,"rows":43}']


async def test_stdout_and_stderr_interleave_in_order(ktl: Ktl) -> None:
    cmd = "for i in 1 2 3 4 5 6; do if [ $((i % 2)) = 0 ]; then echo err$i >&2; else echo out$i; fi; done"
    result = await ktl.cmd("ktl.run", {"command": cmd})
    text = await output_text(ktl, result["sessionId"])
    assert text == "".join(f"{'err' if i % 2 == 0 else 'out'}{i}\r\n" for i in range(1, 7))


async def test_eof_ends_cat(ktl: Ktl) -> None:
    task = ktl.start("ktl.run", {"argv": ["cat"]})
    sid = await running_session(ktl)
    await ktl.cmd("ktl.session.input", {"sessionId": sid, "data": "line\r"})
    await wait_for_text(ktl, sid, "line\r\nline\r\n")
    await ktl.cmd("ktl.session.signal", {"sessionId": sid, "signal": "EOF"})
    result = await asyncio.wait_for(task, 5)
    assert result["state"] == "done"


async def test_log_messages_carry_the_session_prefix(ktl: Ktl) -> None:
    result = await ktl.cmd(
        "ktl.run",
        {"command": "echo alpha; echo beta"},
    )
    sid = result["sessionId"]
    # With sessionData on, the output channel gets summaries instead of every line.
    for _ in range(250):
        if f"[{sid[:8]}]" in ktl.logs():
            break
        await asyncio.sleep(0.02)
    assert f"[{sid[:8]}]" in ktl.logs(), ktl.logs()
    assert "alpha" not in ktl.logs() and "beta" not in ktl.logs(), ktl.logs()


async def test_log_lines_without_session_data(start_ktl) -> None:  # type: ignore[no-untyped-def]
    ktl = await start_ktl(session_data=False, progress=False)
    result = await ktl.cmd(
        "ktl.run", {"command": "printf '\\033[33mwarn\\033[0m line\\nsecond\\n'"}
    )
    sid = result["sessionId"]
    for _ in range(50):
        if "second" in ktl.logs():
            break
        await asyncio.sleep(0.02)
    logs = ktl.logs()
    assert f"[{sid[:8]}] warn line" in logs
    assert f"[{sid[:8]}] second" in logs
    assert "\x1b" not in logs
    assert not ktl.rec.data, "sessionData must only go to clients that opted in"
    assert not ktl.client.progress_reports, "no progress without the client capability"
