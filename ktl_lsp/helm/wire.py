"""The render worker's wire format: one JSON object a line (orjson: a dependency)."""

from __future__ import annotations

from typing import Any

import orjson


def dumps_line(obj: Any) -> bytes:
    data: bytes = orjson.dumps(obj)
    return data + b"\n"


def loads(line: bytes) -> Any:
    return orjson.loads(line)
