"""Whether two path globs can match a common path (for plan claim conflicts).

Claims are compared by the languages their globs describe, not by string equality: `src/**`
and `src/app/*.py` overlap, `src/*.py` and `docs/*.md` do not. A claim on a directory covers
everything below it.
"""

from __future__ import annotations

import functools

Token = tuple[str, str]  # ("lit", c) | ("any", "") | ("star", "") | ("dstar", "") | ("class", body)


def tokenize(glob: str) -> tuple[Token, ...]:
    tokens: list[Token] = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            if glob.startswith("**", i):
                tokens.append(("dstar", ""))
                i += 2
                if i < len(glob) and glob[i] == "/":
                    i += 1  # `a/**/b` also matches `a/b`
                continue
            tokens.append(("star", ""))
        elif ch == "?":
            tokens.append(("any", ""))
        elif ch == "[":
            end = glob.find("]", i + 2)
            if end < 0:
                tokens.append(("lit", ch))
            else:
                tokens.append(("class", glob[i + 1 : end]))
                i = end
        else:
            tokens.append(("lit", ch))
        i += 1
    return tuple(tokens)


def _class_matches(body: str, ch: str) -> bool:
    negate = body[:1] in ("!", "^")
    chars = body[1:] if negate else body
    found = False
    i = 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-":
            found = found or chars[i] <= ch <= chars[i + 2]
            i += 3
        else:
            found = found or chars[i] == ch
            i += 1
    return found != negate


def _single_compatible(a: Token, b: Token) -> bool:
    """Can two one-character tokens match the same character?"""
    if a[0] == "lit" and b[0] == "lit":
        return a[1] == b[1]
    if a[0] == "lit" or b[0] == "lit":
        lit, other = (a, b) if a[0] == "lit" else (b, a)
        if lit[1] == "/":
            return False
        return other[0] == "any" or _class_matches(other[1], lit[1])
    return True  # `?` or classes against each other: assume some character fits both


def _can_consume(star: Token, single: Token) -> bool:
    if star[0] == "dstar":
        return True
    return not (single[0] == "lit" and single[1] == "/")


def tokens_overlap(a: tuple[Token, ...], b: tuple[Token, ...]) -> bool:
    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        ta = a[i] if i < len(a) else None
        tb = b[j] if j < len(b) else None
        a_star = ta is not None and ta[0] in ("star", "dstar")
        b_star = tb is not None and tb[0] in ("star", "dstar")
        if a_star and go(i + 1, j):
            return True
        if b_star and go(i, j + 1):
            return True
        if ta is None or tb is None:
            return False
        if a_star and not b_star:
            return _can_consume(ta, tb) and go(i, j + 1)
        if b_star and not a_star:
            return _can_consume(tb, ta) and go(i + 1, j)
        if a_star and b_star:
            return False  # skipping either star above covers every common string
        return _single_compatible(ta, tb) and go(i + 1, j + 1)

    return go(0, 0)


def _expand(glob: str) -> list[str]:
    glob = glob.strip()
    if glob.startswith("./"):
        glob = glob[2:]
    if glob.endswith("/**"):
        return [glob]
    return [glob.rstrip("/") or "/", glob.rstrip("/") + "/**"]


def globs_overlap(a: str, b: str) -> bool:
    """True when some path (or something below a claimed directory) matches both globs."""
    return any(tokens_overlap(tokenize(x), tokenize(y)) for x in _expand(a) for y in _expand(b))
