"""Free ports on 127.0.0.1, and waiting for a process to listen on one."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from typing import Any


def _ephemeral_low() -> int:
    """Where the kernel's ephemeral ports begin (the local ports of outgoing connections)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            return int(ports.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports for the tests' servers come from below the ephemeral range: a port the kernel hands
# out for binding to port 0 is one it may give an outgoing connection's end the next
# moment (the tests open thousands), and a server started on it then finds it in use.
_PORTS = range(10_000, max(_ephemeral_low(), 10_001))


def _bound(sock: socket.socket) -> int:
    """Bind `sock` to a free port of `_PORTS` on 127.0.0.1 (or any, if none is); its port."""
    for _ in range(100):
        try:
            sock.bind(("127.0.0.1", random.choice(_PORTS)))
        except OSError:
            continue
        break
    else:
        sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    return port


def free_port() -> int:
    with socket.socket() as sock:
        return _bound(sock)


def free_ports(count: int) -> list[int]:
    """`count` different free ports (all held at once while they are picked)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        return [_bound(sock) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def wait_for_port(port: int, proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")
