"""The render worker's wire format: one JSON object a line, orjson when it is installed."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson  # type: ignore[import-not-found, unused-ignore]
except ImportError:
    orjson = None


def dumps_line(obj: Any) -> bytes:
    if orjson is not None:
        data: bytes = orjson.dumps(obj)
        return data + b"\n"
    return json.dumps(obj, ensure_ascii=False).encode("utf-8") + b"\n"


def loads(line: bytes) -> Any:
    return orjson.loads(line) if orjson is not None else json.loads(line)
