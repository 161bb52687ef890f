"""A free TCP port on 127.0.0.1 for a server a test or bench starts: the one home of that rule.

A port the kernel hands out for `bind(0)` is an ephemeral one, and closed again at once it can be taken
before our server binds it: by any process's next outgoing connection (slurmctld's, a client's), which
draws from the same range. A bench once lost slurmd so ("Address already in use"). So the port is
drawn below the ephemeral range, where no outgoing connection lands, and checked free by binding it."""

from __future__ import annotations

import random
import socket

_handed_out: set[int] = set()  # two servers of one process never get the same port


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    high = min(_ephemeral_low(), 65536) - 1
    low = min(20000, high - 1000)
    for _ in range(200):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:  # every draw was taken: an ephemeral one, as before
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
