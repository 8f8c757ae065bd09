"""Worktree lanes: a node with ``worktree: true`` runs in its own ``git worktree``.

The lane is branch ``lane/<plan>/<node>`` checked out under the repository's git directory
(``<git-common-dir>/ktl-lanes/<plan>/<node>``), never inside the main working tree, so parallel
agents and builds cannot trample each other's files or the user's. A lane is kept after the
node ends (it holds the node's work); running the node again reuses it.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_locks: dict[str, asyncio.Lock] = {}


class WorktreeError(Exception):
    pass


@dataclass
class Lane:
    branch: str
    path: str
    cwd: str  #: the node's working directory inside the lane
    created: bool


def ref_part(text: str) -> str:
    """A piece of a branch name git accepts (``a/b c`` -> ``a-b-c``)."""
    part = _UNSAFE.sub("-", text).strip(".-") or "x"
    return part.replace("..", ".")


async def _git(cwd: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip() or out.decode(errors="replace").strip()
        raise WorktreeError(f"git {' '.join(args)}: {text}")
    return out.decode(errors="replace").strip()


async def lane_for(plan_name: str, node_id: str, cwd: str) -> Lane:
    """The lane of a node whose working directory is ``cwd`` (inside a git repository)."""
    try:
        top = await _git(cwd, "rev-parse", "--show-toplevel")
        common = await _git(cwd, "rev-parse", "--path-format=absolute", "--git-common-dir")
    except (WorktreeError, FileNotFoundError) as exc:
        raise WorktreeError(f"worktree: {cwd} is not inside a git repository ({exc})") from exc
    branch = f"lane/{ref_part(plan_name)}/{ref_part(node_id)}"
    path = Path(common) / "ktl-lanes" / ref_part(plan_name) / ref_part(node_id)
    rel = os.path.relpath(os.path.realpath(cwd), os.path.realpath(top))
    lock = _locks.setdefault(common, asyncio.Lock())
    async with lock:  # git takes locks of its own: one worktree change per repository at once
        created = False
        listed = await _git(top, "worktree", "list", "--porcelain")
        registered = {
            os.path.realpath(line[len("worktree ") :])
            for line in listed.splitlines()
            if line.startswith("worktree ")
        }
        if os.path.realpath(path) not in registered:
            await _git(top, "worktree", "prune")
            path.parent.mkdir(parents=True, exist_ok=True)
            exists = await _branch_exists(top, branch)
            if exists:
                await _git(top, "worktree", "add", str(path), branch)
            else:
                await _git(top, "worktree", "add", "-b", branch, str(path), "HEAD")
            created = True
    node_cwd = path / rel if rel != "." else path
    return Lane(branch, str(path), str(node_cwd), created)


async def _branch_exists(top: str, branch: str) -> bool:
    try:
        await _git(top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}")
    except WorktreeError:
        return False
    return True
