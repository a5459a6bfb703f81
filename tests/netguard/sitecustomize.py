"""Loaded at start-up by any Python process with this folder on ``PYTHONPATH``.

Blocks every outbound network connection and name lookup that does not stay on this
machine (loopback addresses, ``localhost``, Unix sockets) and appends each attempt to
the file named by ``$NETGUARD_LOG`` (one line: the target), so a test can show that
nothing tried to leave the machine.
"""

from __future__ import annotations

import os
import socket
import traceback

_LOG = os.environ.get("NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "", None}


def _is_local(host: object) -> bool:
    if host in _LOCAL_NAMES:
        return True
    text = str(host)
    return text.startswith("127.") or text == "::ffff:127.0.0.1"


def _record(target: object) -> None:
    if _LOG:
        where = "".join(traceback.format_stack(limit=6)[:-2]).replace("\n", " | ")
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{target!r} from {where}\n")


_connect, _connect_ex, _getaddrinfo = (
    socket.socket.connect,
    socket.socket.connect_ex,
    socket.getaddrinfo,
)


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _record(address)
        raise OSError(f"netguard: outbound connection to {address!r} blocked")
    return _connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        _record(address)
        return 111  # ECONNREFUSED
    return _connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    if not _is_local(host if not isinstance(host, bytes) else host.decode()):
        _record(("lookup", host))
        raise socket.gaierror(f"netguard: name lookup of {host!r} blocked")
    return _getaddrinfo(host, *args, **kwargs)


if _LOG:
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
