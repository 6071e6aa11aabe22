"""The test suite's network guard, loaded by every Python process started with this folder on
PYTHONPATH (dvc, each `audiofootprint` stage, papermill's kernels): an audit hook
(:func:`sys.addaudithook`) records any attempt to reach a non-loopback address.

Environment:

* ``AUDIOFOOTPRINT_NETGUARD_LOG``: the file that gets one line per attempt (``pid``, ``program``,
  ``event``, ``address``, tab-separated); no variable, no hook.
* ``AUDIOFOOTPRINT_NETGUARD_SEEN``: if set, the file that gets one line per guarded process
  (``pid``, ``program``), so that a test can check that every process of a run was guarded.
* ``AUDIOFOOTPRINT_NETGUARD_BLOCK=1``: also refuse the attempt (PermissionError), so that nothing
  leaves the machine even outside a network namespace.

A connection over loopback (127.0.0.0/8, ::1, localhost: papermill's kernels talk ZMQ over
127.0.0.1) or a local socket (AF_UNIX, netlink) is not an attempt. Only Python's own socket calls
are seen: a C library that opens its own sockets (libzmq) or a program that is not Python is not;
the network namespace of the tests (``unshare -n``) covers those.
"""
from __future__ import annotations

import os
import sys

#: The audit events that reach out: connect (and connect_ex), name resolution, datagrams.
_EVENTS = frozenset({"socket.connect", "socket.getaddrinfo", "socket.sendto", "socket.sendmsg",
                     "socket.gethostbyname", "socket.gethostbyname_ex"})
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def _host(event: str, args: tuple):
    """The host an event reaches for, or None when it stays on the machine."""
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        address = args[1] if len(args) > 1 else None
        if isinstance(address, tuple) and address and isinstance(address[0], (str, bytes)):
            return address[0]  # AF_INET / AF_INET6: (host, port, ...)
        return None  # AF_UNIX path, netlink (pid, groups), no address (a connected socket's send)
    return args[0] if args else None  # getaddrinfo(host, ...), gethostbyname(host)


def _is_local(host) -> bool:
    import ipaddress

    if host is None:
        return True  # getaddrinfo(None, port): the passive address of a server on this machine
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = host.strip().rstrip(".").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost") or host == "":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False  # a name to resolve: that asks the network (DNS)
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _program() -> str:
    argv = getattr(sys, "orig_argv", None) or sys.argv or [sys.executable]
    return " ".join(str(a) for a in argv)[:200].replace("\n", " ").replace("\t", " ")


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode("utf-8", "replace"))
    finally:
        os.close(fd)


def install(log: str, block: bool = False) -> None:
    """Add the audit hook that appends each attempt to ``log`` (and refuses it if ``block``)."""
    busy = []

    def hook(event: str, args: tuple) -> None:
        if event not in _EVENTS or busy:
            return
        busy.append(True)
        try:
            host = _host(event, args)
            if _is_local(host):
                return
            shown = args[1] if event != "socket.getaddrinfo" and len(args) > 1 else args[:2]
            _append(log, f"{os.getpid()}\t{_program()}\t{event}\t{shown!r}")
        except Exception:  # noqa: BLE001 - the guard never breaks the program it watches
            return
        finally:
            busy.clear()
        if block:
            raise PermissionError(f"network access refused by the test suite's guard: {event} {host!r}")

    sys.addaudithook(hook)


def _chain() -> None:
    """Run the next sitecustomize on sys.path, if any: this one only adds to it."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.origin and os.path.abspath(spec.origin) != os.path.abspath(__file__):
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_log = os.environ.get("AUDIOFOOTPRINT_NETGUARD_LOG")
if _log:
    install(_log, block=os.environ.get("AUDIOFOOTPRINT_NETGUARD_BLOCK") == "1")
    if os.environ.get("AUDIOFOOTPRINT_NETGUARD_SEEN"):
        try:
            _append(os.environ["AUDIOFOOTPRINT_NETGUARD_SEEN"], f"{os.getpid()}\t{_program()}")
        except OSError:
            pass
try:
    _chain()
except Exception:  # noqa: BLE001
    pass
