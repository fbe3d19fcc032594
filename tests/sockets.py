"""Which sockets a job's processes listen on: everything the project starts on one machine
should be reachable from this machine only."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import psutil


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def exposed_listeners(roots: Iterable[int] | None = None) -> list[str]:
    """Listening sockets not on a loopback address, of the processes `roots` (default: this
    one) and all their descendants (a local Ray cluster, its workers, their vLLM engines)."""
    exposed = []
    for root in roots if roots is not None else [psutil.Process().pid]:
        top = psutil.Process(root)
        for proc in [top, *top.children(recursive=True)]:
            try:
                for conn in proc.net_connections(kind="inet"):
                    if conn.status == psutil.CONN_LISTEN and not is_loopback(conn.laddr.ip):
                        exposed.append(f"{proc.name()} (pid {proc.pid}) on {conn.laddr.ip}:{conn.laddr.port}")
            except psutil.Error:
                pass  # gone since the listing
    return exposed
