"""The render worker cannot reach the network: a chart is someone else's code.

Helm fetches what a chart points at while rendering: a `values.schema.json` `$ref` to an http
URL is loaded during validation (a beacon that tells a stranger who opened their chart, and
when), and future library versions may fetch more. The worker needs no network at all (it talks
to the server over pipes), so on Linux it installs a seccomp filter before Helm's library is
loaded: creating an IPv4 or IPv6 socket fails with EACCES, in every thread the Go runtime starts
afterwards. Elsewhere (and where the kernel refuses filters) it says so and renders anyway; the
server also renders from a mirror without `values.schema.json` (see `render.Mirrors`).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
import sys

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_LD_ABS_W = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_AF_INET, _AF_INET6 = 2, 10

#: machine -> (AUDIT_ARCH_*, the socket(2) syscall number)
_ARCHES = {
    "x86_64": (0xC000003E, 41),
    "amd64": (0xC000003E, 41),
    "aarch64": (0xC00000B7, 198),
    "arm64": (0xC00000B7, 198),
}


class _Filter(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def _program(arch: int, socket_nr: int) -> bytes:
    """seccomp_data is {int nr; u32 arch; u64 ip; u64 args[6]}: nr at 0, arch at 4, args at 16."""

    def op(code: int, jt: int, jf: int, k: int) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    return b"".join(
        (
            op(_LD_ABS_W, 0, 0, 4),  # 0: the architecture
            op(_JEQ_K, 1, 0, arch),  # 1: ours: go on at 3
            op(_RET_K, 0, 0, _RET_ALLOW),  # 2: another ABI (not expected): allow
            op(_LD_ABS_W, 0, 0, 0),  # 3: the syscall
            op(_JEQ_K, 0, 3, socket_nr),  # 4: socket(2)? else allow (8)
            op(_LD_ABS_W, 0, 0, 16),  # 5: its domain
            op(_JEQ_K, 2, 0, _AF_INET),  # 6: IPv4: refuse (9)
            op(_JEQ_K, 1, 0, _AF_INET6),  # 7: IPv6: refuse (9)
            op(_RET_K, 0, 0, _RET_ALLOW),  # 8
            op(_RET_K, 0, 0, _RET_ERRNO | errno.EACCES),  # 9
        )
    )


def forbid_network() -> str | None:
    """Installs the filter for this thread and every thread it starts from now on; None when
    it is in place, else why not."""
    if not sys.platform.startswith("linux"):
        return f"no network sandbox on {sys.platform}"
    arch = _ARCHES.get(platform.machine().lower())
    if arch is None:
        return f"no network sandbox on {platform.machine()}"
    program = _program(*arch)
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = _Filter(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"prctl(NO_NEW_PRIVS) failed: errno {ctypes.get_errno()}"
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"seccomp filter refused: errno {ctypes.get_errno()}"
    return None
