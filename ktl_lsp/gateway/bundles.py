"""``POST /api/v1/bundles``: a ``.ktlbundle`` uploaded (the replay UI's drag and drop, or curl)
and imported into the store as read-only sessions.

The body is streamed to a file only this user can read, in a private temporary folder, and
refused past a size cap before it is all read; the bundle is checked (every member against its
SHA-256) before anything is stored, and the file is removed whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path

from aiohttp import web

from ktl_lsp.fullwrite import write_all
from ktl_lsp.gateway.http import json_response, manager_of, text_error
from ktl_lsp.sessions.bundle import EXTENSION, BundleError

#: The largest upload taken when the app is built without ``bundle_max_bytes``.
MAX_BYTES = 1 << 30
CHUNK = 1 << 20


def _name(given: str | None) -> str:
    """The uploaded file's name as recorded in ``meta.imported.from``: its last part, plain."""
    base = re.sub(r"[^A-Za-z0-9._ -]+", "_", (given or "").rsplit("/", 1)[-1]).strip(" .")
    return base[:100] or f"upload{EXTENSION}"


async def upload(request: web.Request, max_bytes: int) -> web.StreamResponse:
    """``POST /api/v1/bundles?name=FILE`` with the bundle as the body -> 201 ``{sessions}``
    (their ids, root first); 400 names the member of a tampered bundle; 413 past the cap."""
    too_big = f"bundle refused: larger than the gateway takes ({max_bytes // (1 << 20)} MB)"
    if request.content_length is not None and request.content_length > max_bytes:
        return text_error(413, too_big)
    folder = Path(tempfile.mkdtemp(prefix="ktl-upload-"))  # mode 0700
    try:
        path = folder / _name(request.query.get("name"))
        size = 0
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            async for chunk in request.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    return text_error(413, too_big)
                await asyncio.to_thread(write_all, out, chunk)
        if size == 0:
            return text_error(400, "bundle refused: the request has no body")
        try:
            imported = await manager_of(request).import_bundle(path)
        except BundleError as exc:
            return text_error(400, str(exc).replace(str(folder) + os.sep, ""))
        return json_response({"sessions": imported, "from": path.name}, status=201)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)
