"""The session host's socket protocol, spoken directly to a real ``ktl-lsp host``."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from ktl_lsp.host.client import open_connection
from ktl_lsp.host.protocol import HostPaths, pack, read_message, spec_to_wire
from ktl_lsp.sessions.manager import RunSpec

# Numbered lines, fast: about 40 MB.
GEN = "import sys\nw=sys.stdout.write\nfor i in range(800_000): w(f'line {i:09d} ' + 'x' * 36 + '\\n')\n"


async def test_a_client_that_stops_reading_is_caught_up_from_the_store(
    host_env: dict[str, str], tmp_path: Path
) -> None:
    store = tmp_path / "slow.db"
    paths = HostPaths.of(store)
    host = subprocess.Popen(
        [
            *(sys.executable, "-m", "ktl_lsp", "--store", str(store), "--log-file", str(paths.log)),
            *("host", "--idle-timeout", "30"),
        ]
    )
    try:
        conn = None
        for _ in range(200):
            conn = await open_connection(paths)
            if conn is not None:
                break
            await asyncio.sleep(0.05)
        assert conn is not None
        reader, writer = conn
        spec = RunSpec(argv=[sys.executable, "-c", GEN], command="gen")
        writer.write(pack({"op": "run", "id": 1, "spec": spec_to_wire(spec)}))
        await asyncio.sleep(3)  # reading nothing meanwhile: the host must not wait for us
        answer = await read_message(reader)
        assert answer is not None and answer[0]["id"] == 1
        first_seq = answer[0]["ok"]["last_seq"] + 1
        seqs: list[int] = []
        out: list[bytes] = []
        while True:
            message = await asyncio.wait_for(read_message(reader), 30)
            assert message is not None
            header, payload = message
            if header.get("ev") == "state":
                ended = header["session"]
                break
            seqs.append(header["seq"])
            if header["type"] == "output":
                out.append(payload)
        assert ended["state"] == "done"
        assert seqs == list(range(first_seq, ended["last_seq"] + 1)), "every frame, in order"
        text = b"".join(out).decode()
        numbers = [int(n) for n in re.findall(r"^line (\d{9}) x{36}\r$", text, flags=re.M)]
        assert numbers == list(range(800_000))
        assert "a client stopped reading" in paths.log.read_text()
        writer.write(pack({"op": "stop", "id": 2}))
        while await read_message(reader) is not None:  # the host closes it as it ends
            pass
        writer.close()
        await writer.wait_closed()
    finally:
        assert host.wait(20) == 0
