"""The id of a refused request is found in its bytes as they are skipped, wherever it is.

The reference is `json.loads` of the whole message: the scanner must agree with it for any object,
any key order and any split of the bytes into reads.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ktl_lsp.lsp.transport import RequestIdScanner

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ids = st.integers(min_value=-(2**53), max_value=2**53) | st.text(max_size=40)


def scan(body: bytes, cuts: list[int]) -> RequestIdScanner:
    scanner = RequestIdScanner()
    start = 0
    for cut in sorted({c % (len(body) + 1) for c in cuts}):
        scanner.feed(body[start:cut])
        start = cut
    scanner.feed(body[start:])
    return scanner


@settings(max_examples=400, deadline=None)
@given(
    fields=st.dictionaries(st.text(max_size=6).filter(lambda k: k != "id"), json_values),
    request_id=ids,
    where=st.integers(min_value=0),
    spaces=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=6),
)
def test_the_id_is_found_anywhere_in_any_split(
    fields: dict[str, Any], request_id: int | str, where: int, spaces: bool, cuts: list[int]
) -> None:
    items = list(fields.items())
    items.insert(where % (len(items) + 1), ("id", request_id))
    body = json.dumps(dict(items), ensure_ascii=False, indent=1 if spaces else None).encode()
    assert json.loads(body)["id"] == request_id
    assert scan(body, cuts).request_id == request_id


@settings(max_examples=200, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=6).filter(lambda k: k != "id"), json_values))
def test_a_notification_has_no_id(fields: dict[str, Any]) -> None:
    assert scan(json.dumps(fields).encode(), [3, 7]).request_id is None


def test_an_id_nested_deeper_is_not_the_request_id() -> None:
    body = b'{"params": {"id": 5, "x": [{"id": 6}]}, "method": "m"}'
    assert scan(body, [9, 20]).request_id is None


def test_ids_that_json_rpc_does_not_allow_are_none() -> None:
    for body in (
        b'{"id": {"a": 1}}',
        b'{"id": [1]}',
        b'{"id": true}',
        b'{"id": 1.5}',
        b'{"id": null}',
        b"[1, 2]",
        b'{"id": "' + b"x" * 1000 + b'"}',
    ):
        assert scan(body, [4]).request_id is None, body
