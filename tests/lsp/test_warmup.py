"""The converter warm-up after `initialized`: every message kind it names converts, nothing is sent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ktl_lsp.lsp.app import build
from ktl_lsp.lsp.warmup import warm_messages


def test_every_message_kind_converts_and_nothing_is_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = build(tmp_path / "s.db")
    sent: list[bytes] = []
    server.protocol.set_writer(_Capture(sent))
    with caplog.at_level(logging.DEBUG):
        warm_messages(server.protocol)
    assert not [r for r in caplog.records if r.name.startswith(("ktl_lsp", "pygls"))]
    assert sent == []


class _Capture:
    def __init__(self, sent: list[bytes]) -> None:
        self.sent = sent

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass
