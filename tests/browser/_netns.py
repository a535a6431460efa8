"""A private network namespace (loopback only) for the browser tests.

When the tests run as root (CI containers, ``make test`` on a build host) the
node under test is started in a new network namespace, and every Chromium the
tests launch joins it: nothing the pages or the browser do can reach (or be
reached from) the host's network, and the WebRTC calls can only use loopback.
Elsewhere the tests run in the host's namespace.

This file is also a small launcher, with no imports from the project, so a
child process can be put in place before it ``exec``s the real program::

    python _netns.py new -- telemed dev ...        # new namespace, loopback up
    python _netns.py enter PID -- chromium ...     # join PID's namespace
    python _netns.py probe                         # exit 0 if namespaces work here
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

T = TypeVar("T")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def loopback_up() -> None:
    """A new namespace's loopback interface starts down: bring it up (ioctl, no `ip` needed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def unshare_net() -> None:
    """Move the calling thread (and the processes it starts) into a new network namespace."""
    _check(_libc().unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    loopback_up()


def enter(pid: int) -> None:
    """Move the calling thread into the network namespace of process ``pid``."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        _check(_libc().setns(fd, CLONE_NEWNET), f"setns(net of {pid})")
    finally:
        os.close(fd)


def available() -> bool:
    """True when this process may create network namespaces (root, and not forbidden by seccomp)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    try:
        probe = subprocess.run([sys.executable, __file__, "probe"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def command(*prefix: str) -> list[str]:
    """The argv prefix that runs a program through this launcher."""
    return [sys.executable, os.path.abspath(__file__), *prefix, "--"]


def call_in(pid: int | None, fn: Callable[[], T], timeout: float = 60) -> T:
    """Run ``fn`` in a thread of its own, inside ``pid``'s network namespace
    (namespaces are per thread, so the rest of the test process stays where it
    is); ``pid`` None: in the host's. A thread also keeps ``fn`` clear of the
    event loop Playwright's sync API runs in the main thread."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            if pid is not None:
                enter(pid)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"netns-{pid}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout} s (in the namespace of {pid})")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def main(argv: list[str]) -> int:
    if argv[:1] == ["probe"]:
        try:
            unshare_net()
        except OSError as exc:
            print(exc, file=sys.stderr)
            return 1
        return 0
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    mode, program = argv[:split], argv[split + 1 :]
    if mode == ["new"]:
        unshare_net()
    elif len(mode) == 2 and mode[0] == "enter":
        enter(int(mode[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    os.execvp(program[0], program)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
