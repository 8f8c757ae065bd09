"""POSIX runner: the child is started with ``posix_spawn``; the asyncio loop does everything after.

``posix_spawn`` (a vfork in glibc) costs the same whatever the server's size: a fork of the
server, as ptyprocess does, copied its page tables and took 9 ms at 65 MB, most of the time to
first output of ``echo hi``. The child becomes a session leader and opens the pty's slave side,
which makes it its controlling terminal (Linux; elsewhere ptyprocess still does the fork).
Reads go through ``loop.add_reader``, the exit is seen through a pidfd (or a waiter thread where
pidfds are missing) and the child is reaped with ``WNOHANG``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import struct
import sys
import termios
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from ptyprocess import PtyProcess

from ktl_lsp.pty.base import SIGNALS, ExitInfo, PtySink, PtySpec, Resolved, SpawnError, resolve
from ktl_lsp.pty.decoder import Utf8Splitter

#: Most bytes one busy terminal (alone) may take per loop turn. Every turn's frame costs the
#: same fixed work downstream (store, bus, editor feed), so bigger frames stream faster: 64 KB
#: streamed 12% faster than 32 KB (bench_sessions), and a turn of 16 reads stays ~2 ms.
READ_SIZE = 64 * 1024
#: Linux hands a pty's output out at most 4095 bytes per read (the line discipline's buffer).
#: A shorter read means the buffer is empty: one more read would only ask the kernel to flush its
#: pending work and find nothing (EAGAIN), the costliest read of all.
FULL_READ = 4095
#: Most bytes read from all terminals together in one loop turn. When twenty sessions flood at
#: once, the rest wait for the next turn (the fd stays ready, so nothing is lost), and timers,
#: requests and the editor's stream get the loop in between: a turn stays a few milliseconds.
TURN_BUDGET = 128 * 1024
#: ... and at most this long. A read past what epoll reported waits in the kernel for the pty's
#: flush worker; on a saturated machine that worker waits for a CPU, so a byte budget alone let
#: a turn of sixteen such reads stall every other session.
TURN_TIME_S = 0.004
#: After the child exits, grandchildren holding the terminal get this long before they are killed.
DRAIN_AFTER_EXIT_S = 1.0


#: Dispositions a program expects to start with. Python ignores SIGPIPE, and an editor started
#: from a background shell may ignore SIGINT/SIGHUP; ignored signals survive exec, so without
#: this `yes | head -1` complains of a broken pipe and Ctrl-C does nothing.
DEFAULT_SIGNALS = (
    signal.SIGPIPE,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTERM,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGXFSZ,
)


#: A working directory other than ours is entered by a shell that then execs the program:
#: Python's posix_spawn cannot chdir (3.11), and a chdir of the whole server would race its
#: threads. The directory and the program were checked by ``resolve`` beforehand.
CHDIR_TRAMPOLINE = 'cd -- "$1" && shift && exec "$@"'
SPAWN_SHELL = "/bin/sh"
#: Where posix_spawn can make the pty the controlling terminal (open after setsid), and the
#: shell for other directories is there.
USE_POSIX_SPAWN = (
    sys.platform == "linux" and hasattr(os, "POSIX_SPAWN_OPEN") and os.path.exists(SPAWN_SHELL)
)


def as_shell_script(resolved: Resolved) -> Resolved:
    """What a shell does when exec refuses a file (ENOEXEC): a text file without ``#!`` runs as a
    shell script; a binary (a NUL in its first line, bash's test) stays an error.

    From another directory the trampoline's ``exec`` already does this; here the server's own
    directory behaves the same.
    """
    with open(os.path.join(resolved.cwd, resolved.argv[0]), "rb") as fh:
        head = fh.read(80)
    if b"\0" in head.split(b"\n", 1)[0] or not os.path.exists(SPAWN_SHELL):
        raise OSError(errno.ENOEXEC, "cannot execute binary file: Exec format error")
    return Resolved([SPAWN_SHELL, *resolved.argv], resolved.cwd, resolved.env)


class Child:
    """The started process as the runner needs it: its pid and the pty's master side."""

    def __init__(self, pid: int, fd: int, owner: Any = None) -> None:
        self.pid = pid
        self.fd = fd
        self._owner = owner  # a ptyprocess object (fallback): closing it must go through it

    def close(self) -> None:
        if self._owner is not None:
            with contextlib.suppress(OSError):
                self._owner.fileobj.close()
            # Else its __del__ would close() again: sleep, and signal a reaped pid.
            self._owner.closed = True
            self._owner.terminated = True
        else:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        self.fd = -1


def spawn_child(resolved: Resolved, cols: int, rows: int) -> Child:
    """Starts the child on a new pty; returns once it has exec'd (blocking: call it off the loop)."""
    if not USE_POSIX_SPAWN:
        return _spawn_ptyprocess(resolved, cols, rows)
    master, slave = os.openpty()  # both close on exec
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        tty = os.ttyname(slave)
        path, argv = resolved.argv[0], resolved.argv
        if resolved.cwd != os.getcwd():
            path, argv = (
                SPAWN_SHELL,
                [SPAWN_SHELL, "-c", CHDIR_TRAMPOLINE, "ktl", resolved.cwd, *argv],
            )
        pid = os.posix_spawn(
            path,
            argv,
            resolved.env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, tty, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ],
            setsid=True,
            setsigdef=DEFAULT_SIGNALS,
            setsigmask=(),
        )
    except NotImplementedError:  # a C library without POSIX_SPAWN_SETSID (glibc < 2.26)
        os.close(master)
        return _spawn_ptyprocess(resolved, cols, rows)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return Child(pid, master)


def _spawn_ptyprocess(resolved: Resolved, cols: int, rows: int) -> Child:
    proc = PtyProcess.spawn(
        resolved.argv,
        cwd=resolved.cwd,
        env=resolved.env,
        dimensions=(rows, cols),
        preexec_fn=_default_signals,
    )
    proc.delayafterclose = 0.0
    return Child(proc.pid, proc.fd, owner=proc)


def _default_signals() -> None:  # pragma: no cover - runs in the child between fork and exec
    for sig in DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


class TurnBudget:
    """How much each terminal may read in the current loop turn (shared by all on one loop).

    One busy terminal drains up to ``READ_SIZE`` per turn: fewer, larger frames. When several
    are busy at once, each gets a single read per turn: a read past what epoll reported can sleep
    in the kernel (the pty waits for its flush worker), and twenty of those make a long turn.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.left = TURN_BUDGET
        self.deadline = 0.0
        self.readers = 0
        self._previous_readers = 0
        self._reset_pending = False

    def take(self) -> int:
        """What one terminal may read now (0: wait for the next turn)."""
        if not self._reset_pending:
            # Runs first thing in the next turn, before that turn's readers.
            self._loop.call_soon(self._reset)
            self._reset_pending = True
            self.deadline = time.perf_counter() + TURN_TIME_S
        elif self.overdue():
            return 0
        self.readers += 1
        crowded = self.readers > 1 or self._previous_readers > 1
        return min(self.left, FULL_READ if crowded else READ_SIZE)

    def spend(self, n: int) -> None:
        self.left -= n

    def overdue(self) -> bool:
        return time.perf_counter() > self.deadline

    def _reset(self) -> None:
        self.left = TURN_BUDGET
        self._previous_readers = self.readers
        self.readers = 0
        self._reset_pending = False


_budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TurnBudget] = (
    weakref.WeakKeyDictionary()
)


def _budget(loop: asyncio.AbstractEventLoop) -> TurnBudget:
    budget = _budgets.get(loop)
    if budget is None:
        budget = _budgets[loop] = TurnBudget(loop)
    return budget


class PosixPty:
    def __init__(self, proc: Child, sink: PtySink, loop: asyncio.AbstractEventLoop) -> None:
        self._proc = proc
        self.pid: int = proc.pid
        self._fd: int = proc.fd
        self._sink = sink
        self._loop = loop
        self._splitter = Utf8Splitter()
        self._budget = _budget(loop)
        self._out = bytearray()
        self._eof = False
        self._exit: ExitInfo | None = None
        self._done: asyncio.Future[ExitInfo] = loop.create_future()
        self._reading = False
        self._paused = False
        self._writing = False
        self._pidfd = -1
        self._drain_timer: asyncio.TimerHandle | None = None
        self._closed = False
        os.set_blocking(self._fd, False)
        self._start_reading()
        self._watch_exit()

    @staticmethod
    def fork(spec: PtySpec) -> Child:
        """Starts the child; blocks until it has exec'd, so call it off the event loop."""
        resolved = resolve(spec)
        try:
            try:
                return spawn_child(resolved, spec.cols, spec.rows)
            except OSError as exc:
                if exc.errno != errno.ENOEXEC:
                    raise
                # Before the program started: nothing ran twice.
                return spawn_child(as_shell_script(resolved), spec.cols, spec.rows)
        except FileNotFoundError as exc:
            raise SpawnError(f"executable not found: {spec.argv[0]} ({exc})") from exc
        except PermissionError as exc:
            raise SpawnError(f"permission denied: {spec.argv[0]} ({exc})") from exc
        except OSError as exc:
            raise SpawnError(f"could not start {spec.argv[0]}: {exc}") from exc

    @classmethod
    async def spawn(cls, spec: PtySpec, sink: PtySink) -> PosixPty:
        # Checking the program and directory touches the filesystem, and the spawn returns only
        # once the child has exec'd: both can be slow on a busy machine or a network mount.
        proc = await asyncio.to_thread(cls.fork, spec)
        return cls(proc, sink, asyncio.get_running_loop())

    # reading ------------------------------------------------------------------------------
    def _start_reading(self) -> None:
        if not self._reading and not self._eof and not self._paused:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def pause_reading(self) -> None:
        """Backpressure: stop reading so the kernel buffer fills and the child blocks on write."""
        self._paused = True
        self._stop_reading()

    def resume_reading(self) -> None:
        self._paused = False
        self._start_reading()

    def _on_readable(self) -> None:
        # Drain what is ready now (a tty hands out ~4 KB per read): fewer, larger frames cost
        # less everywhere downstream, and nothing waits for data that has not arrived.
        limit = self._budget.take()
        if limit <= 0:
            return  # other terminals used this turn; the fd stays ready for the next one
        chunks: list[bytes] = []
        size = 0
        eof = False
        while size < limit:
            try:
                data = os.read(self._fd, limit - size)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EBADF):
                    raise
                eof = True
                break
            if not data:
                eof = True
                break
            chunks.append(data)
            size += len(data)
            if len(data) < FULL_READ or self._budget.overdue():
                break
        self._budget.spend(size)
        if chunks:
            raw, text = self._splitter.feed(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            if raw:
                self._sink.on_output(raw, text)
        if eof:
            self._on_eof()

    def _on_eof(self) -> None:
        self._stop_reading()
        self._eof = True
        raw, text = self._splitter.flush()
        if raw:
            self._sink.on_output(raw, text)
        self._maybe_finish()

    # exit ---------------------------------------------------------------------------------
    def _watch_exit(self) -> None:
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):
            self._pidfd = -1
        if self._pidfd >= 0:
            self._loop.add_reader(self._pidfd, self._on_pidfd)
            return
        threading.Thread(target=self._wait_thread, name=f"pty-wait-{self.pid}", daemon=True).start()

    def _wait_thread(self) -> None:
        # Only used without pidfds: a blocking waitpid costs a thread, never the loop.
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            status = 0
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._on_exit_status, status)

    def _on_pidfd(self) -> None:
        self._loop.remove_reader(self._pidfd)
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0
        if pid == 0:  # spurious wake-up; keep watching
            self._loop.add_reader(self._pidfd, self._on_pidfd)
            return
        self._on_exit_status(status)

    def _on_exit_status(self, status: int) -> None:
        self._exit = ExitInfo.from_wait_status(status)
        if not self._eof:
            # Drain what is left; grandchildren that keep the terminal open are hung up on.
            if self._paused:
                self.resume_reading()
            self._drain_timer = self._loop.call_later(DRAIN_AFTER_EXIT_S, self._drain_expired)
        self._maybe_finish()

    def _drain_expired(self) -> None:
        self._drain_timer = None
        self._killpg(signal.SIGKILL)
        if not self._eof:
            self._on_eof()

    def _maybe_finish(self) -> None:
        if self._eof and self._exit is not None and not self._done.done():
            self._close()
            self._done.set_result(self._exit)

    def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._drain_timer is not None:
            self._drain_timer.cancel()
        self._stop_reading()
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        if self._pidfd >= 0:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        # Leftover group members (background jobs that ignored SIGHUP) must not outlive us.
        self._killpg(signal.SIGKILL)
        self._proc.close()

    async def wait(self) -> ExitInfo:
        return await asyncio.shield(self._done)

    @property
    def exited(self) -> bool:
        return self._exit is not None

    # input --------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        self._out += data
        self._flush_out()

    def _flush_out(self) -> None:
        while self._out and not self._closed:
            try:
                n = os.write(self._fd, self._out)
            except BlockingIOError:
                break
            except OSError:
                self._out.clear()
                break
            del self._out[:n]
        want = bool(self._out) and not self._closed
        if want and not self._writing:
            self._loop.add_writer(self._fd, self._flush_out)
            self._writing = True
        elif not want and self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def judge_input(self, raw: bytes, verdict: Callable[[bool], None]) -> None:
        """A local terminal knows its echo mode at once."""
        verdict(self.echo_enabled())

    def echo_enabled(self) -> bool:
        """Whether the terminal echoes input: off while a program reads a password."""
        if self._closed:
            return True
        try:
            attrs = termios.tcgetattr(self._fd)
        except termios.error:
            return True
        return bool(attrs[3] & termios.ECHO)

    def resize(self, cols: int, rows: int) -> None:
        if self._closed:
            return
        # TIOCSWINSZ on the master makes the kernel send SIGWINCH to the foreground group.
        with contextlib.suppress(OSError):
            fcntl.ioctl(self._fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def send_eof(self) -> None:
        """Like Ctrl-D at the start of a line: the reader sees end of input."""
        if self._closed:
            return
        try:
            veof = termios.tcgetattr(self._fd)[6][termios.VEOF]
        except termios.error:
            veof = b"\x04"
        self.write(veof if isinstance(veof, bytes) else bytes([veof]))

    def send_signal(self, name: str) -> None:
        sig = SIGNALS[name]
        if sig == signal.SIGINT:
            # What Ctrl-C does: the terminal's foreground process group gets the signal.
            with contextlib.suppress(OSError):
                fg = os.tcgetpgrp(self._fd)
                if fg > 0 and fg != self.pid:
                    os.killpg(fg, sig)
        self._killpg(sig)

    def _killpg(self, sig: int) -> None:
        # The child is a session leader (setsid at spawn), so its group id is its pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
