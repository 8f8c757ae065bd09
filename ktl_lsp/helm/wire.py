"""The render worker's wire format: one JSON object a line.

orjson when it can; `json` for what orjson refuses (a lone surrogate in an editor buffer),
escaped to ASCII so the line stays valid UTF-8."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps_line(obj: Any) -> bytes:
    try:
        data: bytes = orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj).encode("ascii") + b"\n"
    return data + b"\n"


def loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)
