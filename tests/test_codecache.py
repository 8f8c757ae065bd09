"""The start-up code cache: same behaviour from cached code, and bad files cost nothing."""

from __future__ import annotations
import __future__

import dataclasses
import importlib.util
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import attr
import attr._make
import pytest

from ktl_lsp import codecache
from ktl_lsp.codecache import FORMAT, CodeCache, _checksum, cache_path
from tests.conftest import StartKtl


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[CodeCache]:
    cache = CodeCache(tmp_path / "cache" / "codegen.bin")
    cache.install()
    try:
        yield cache
    finally:
        cache.uninstall()


def make_point() -> type:
    @attr.define
    class Point:
        x: int
        y: int = 0

    return Point


def test_a_second_process_reuses_the_code_and_classes_behave_the_same(
    installed: CodeCache,
) -> None:
    first = make_point()
    assert installed.misses >= 1  # __init__, __repr__, __eq__, ... (one script or several)
    assert installed.save()
    assert installed.path is not None and installed.path.is_file()
    installed.uninstall()

    again = CodeCache(installed.path)
    again.load()
    again.install()
    try:
        second = make_point()
    finally:
        again.uninstall()
    assert again.misses == 0 and again.hits == installed.misses
    for cls in (first, second):
        p = cls(1, y=2)
        assert (p.x, p.y) == (1, 2)
        assert p == cls(1, 2) and p != cls(2, 2)
        assert repr(p).endswith("Point(x=1, y=2)")
        with pytest.raises(TypeError):
            cls()
    assert not again.save()  # nothing new: the file is left as it is


def make_dataclasses() -> tuple[type, type]:
    @dataclasses.dataclass(frozen=True)
    class Frozen:
        name: str
        tags: tuple[str, ...] = ()

    @dataclasses.dataclass(order=True)
    class Plain:
        n: int
        items: list[int] = dataclasses.field(default_factory=list)

    return Frozen, Plain


def test_dataclasses_methods_come_from_the_cache_and_behave_the_same(
    installed: CodeCache,
) -> None:
    first = make_dataclasses()
    assert installed.misses >= 4  # __init__, __repr__, __eq__, __setattr__, ...
    assert installed.save()
    installed.uninstall()
    assert "exec" not in vars(dataclasses)

    again = CodeCache(installed.path)
    again.load()
    again.install()
    try:
        second = make_dataclasses()
    finally:
        again.uninstall()
    assert again.misses == 0 and again.hits == installed.misses
    for frozen, plain in (first, second):
        f = frozen("a")
        assert f == frozen("a", ()) and hash(f) == hash(frozen("a")) and f != frozen("b")
        assert repr(f).endswith("Frozen(name='a', tags=())")
        with pytest.raises(dataclasses.FrozenInstanceError):
            f.name = "b"  # type: ignore[misc]
        a, b = plain(1), plain(1)
        a.items.append(1)
        assert b.items == [] and plain(1) < plain(2)
        with pytest.raises(TypeError):
            plain()


def test_cached_code_is_what_attrs_would_have_compiled(installed: CodeCache) -> None:
    # attr/_make.py has `from __future__ import annotations`, and its compile() calls inherit it.
    flags = codecache._future_flags(attr._make)
    assert flags & __future__.annotations.compiler_flag
    source = "def f(a: int) -> int:\n    return a + 1\n"
    ours = attr._make.compile(source, "<attrs generated f>", "exec")  # type: ignore[attr-defined]
    theirs = compile(source, "<attrs generated f>", "exec", flags, dont_inherit=True)
    assert ours.co_code == theirs.co_code and ours.co_flags == theirs.co_flags
    ns: dict[str, object] = {}
    exec(ours, ns)
    assert ns["f"].__annotations__ == {"a": "int", "return": "int"}  # type: ignore[attr-defined]


def test_other_compile_calls_pass_through(installed: CodeCache) -> None:
    before = installed.misses + installed.hits
    code = attr._make.compile("x = 1", "<s>", "exec", 0, True)  # type: ignore[attr-defined]
    ns: dict[str, object] = {}
    exec(code, ns)
    assert ns["x"] == 1
    assert installed.misses + installed.hits == before


def test_uninstall_restores_the_builtin() -> None:
    cache = CodeCache(None)
    cache.install()
    assert "compile" in vars(attr._make) and "exec" in vars(dataclasses)
    cache.uninstall()
    assert "compile" not in vars(attr._make) and "exec" not in vars(dataclasses)


def test_a_damaged_file_is_reported_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "codegen.bin"
    payload = b"\xff\x00garbage"  # checksum right, content not marshal data
    path.write_bytes(FORMAT + importlib.util.MAGIC_NUMBER + _checksum(payload) + payload)
    cache = CodeCache(path)
    cache.load()
    assert cache.loaded == {} and cache.error and "damaged" in cache.error
    cache.install()
    try:
        make_point()
    finally:
        cache.uninstall()
    assert cache.save()
    fresh = CodeCache(path)
    fresh.load()
    assert fresh.error is None and len(fresh.loaded) == cache.misses


def test_a_flipped_byte_is_caught_before_any_code_is_loaded(installed: CodeCache) -> None:
    make_point()
    assert installed.save() and installed.path is not None
    data = bytearray(installed.path.read_bytes())
    data[-40] ^= 0x01  # inside the last code object
    installed.path.write_bytes(bytes(data))
    damaged = CodeCache(installed.path)
    damaged.load()
    assert damaged.loaded == {} and damaged.error and "damaged" in damaged.error


def test_no_home_directory_means_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KTL_LSP_CODE_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert cache_path() is None


def test_a_file_from_another_python_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "codegen.bin"
    path.write_bytes(FORMAT + b"\x00\x00\r\n" + b"anything")
    cache = CodeCache(path)
    cache.load()
    assert cache.loaded == {} and cache.error is None


def test_a_cache_that_cannot_be_written_is_reported_not_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # even root cannot make a directory inside a file
    cache = CodeCache(blocker / "ktl-lsp" / "codegen.bin")
    cache.install()
    try:
        make_point()
    finally:
        cache.uninstall()
    assert not cache.save()
    assert cache.error and "cannot write" in cache.error
    assert list(tmp_path.iterdir()) == [blocker]


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KTL_LSP_CODE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_path() == tmp_path / "ktl-lsp" / f"codegen.{sys.implementation.cache_tag}.bin"
    monkeypatch.setenv("KTL_LSP_CODE_CACHE", "0")
    assert cache_path() is None
    monkeypatch.setenv("KTL_LSP_CODE_CACHE", str(tmp_path / "elsewhere.bin"))
    assert cache_path() == tmp_path / "elsewhere.bin"


async def test_the_server_fills_the_cache_then_starts_from_it(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg"), "KTL_LSP_CODE_CACHE": "1"}
    first = await start_ktl(env=env)
    stats = (await first.cmd("ktl.server.stats", {}))["codeCache"]
    assert stats["enabled"] and stats["misses"] > 500 and stats["error"] is None
    await first.client.shutdown_session()
    await first.client.stop()
    files = list((tmp_path / "xdg" / "ktl-lsp").glob("codegen.*.bin"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    written = files[0].stat().st_mtime_ns

    second = await start_ktl(env=env)
    stats = (await second.cmd("ktl.server.stats", {}))["codeCache"]
    # Hashable attrs classes (one in cattrs) embed the process's hash seed: they always miss.
    assert stats["hits"] > 500 and stats["misses"] <= 3, stats
    assert files[0].stat().st_mtime_ns == written  # a few such misses do not rewrite the file


async def test_the_server_starts_with_a_damaged_cache_and_with_it_off(
    start_ktl: StartKtl, tmp_path: Path
) -> None:
    path = tmp_path / "codegen.bin"
    path.write_bytes(FORMAT + importlib.util.MAGIC_NUMBER + b"\x00" * 32 + b"not marshal")
    damaged = await start_ktl(env={"KTL_LSP_CODE_CACHE": str(path)})
    stats = (await damaged.cmd("ktl.server.stats", {}))["codeCache"]
    assert stats["hits"] == 0 and stats["misses"] > 500 and "damaged" in stats["error"]
    result = await damaged.cmd("ktl.run", {"argv": ["echo", "still works"]})
    assert result["state"] == "done"

    off = await start_ktl(env={"KTL_LSP_CODE_CACHE": "0"})
    stats = (await off.cmd("ktl.server.stats", {}))["codeCache"]
    assert stats["enabled"] is False and stats["hits"] == stats["misses"] == 0


def test_code_with_a_per_process_seed_does_not_rewrite_the_file(tmp_path: Path) -> None:
    path = tmp_path / "codegen.bin"
    cache = CodeCache(path)
    cache.install()
    try:
        attr._make.compile("seed = 1", "<attrs generated hash X>", "exec")  # type: ignore[attr-defined]
    finally:
        cache.uninstall()
    assert cache.save()
    again = CodeCache(path)
    again.load()
    again.install()
    try:
        # Same name, other text: what a hashable class's __hash__ looks like in a new process.
        attr._make.compile("seed = 2", "<attrs generated hash X>", "exec")  # type: ignore[attr-defined]
        assert not again.save()
        attr._make.compile("other = 1", "<attrs generated init Y>", "exec")  # type: ignore[attr-defined]
    finally:
        again.uninstall()
    assert again.save()  # a name never seen before is worth keeping
    final = CodeCache(path)
    final.load()
    assert final.known_files == {"<attrs generated hash X>", "<attrs generated init Y>"}


def test_saves_from_two_threads_leave_one_whole_file(tmp_path: Path) -> None:
    import threading

    cache = CodeCache(tmp_path / "codegen.bin")
    cache.install()
    try:
        for i in range(200):
            attr._make.compile(f"x = {i}", f"<attrs generated {i}>", "exec")  # type: ignore[attr-defined]
    finally:
        cache.uninstall()
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(cache.save())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [
        False,
        False,
        False,
        True,
    ]  # the first wrote, the rest had nothing new
    again = CodeCache(cache.path)
    again.load()
    assert again.error is None and len(again.loaded) == 200
