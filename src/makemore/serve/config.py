"""How a server listens and what it lets one request cost; no web stack is needed to build one.

The bounds are the library's (`bounds.BOUNDS`), so `makemore serve --port 0` is refused by the same
rule, in the same words, as `ServeConfig(port=0)`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .. import bounds

DEFAULT_HOST = "127.0.0.1"  # this machine only: the page has no authentication
DEFAULT_PORT = 8000
MAX_BODY_BYTES = 4 * 1024 * 1024  # a request body larger than this is refused (413) before it is parsed
MAX_EXPLAINED_CHARS = 10_000  # score with explain: characters (and ends) explained per request, all items together


@dataclass(frozen=True)
class ServeConfig:
    """Where the server listens and how much work it takes on at once."""

    host: str = DEFAULT_HOST  # address to bind; anything but loopback exposes an unauthenticated page
    port: int = DEFAULT_PORT  # TCP port, 1..65535
    workers: int = 2  # model calls running at once (a thread pool); more requests wait their turn
    max_connections: int = 512  # open connections at once; beyond it the server answers 503
    max_body_bytes: int = MAX_BODY_BYTES  # request bodies over this get a 413 JSON error

    def __post_init__(self) -> None:
        bounds.check("port", self.port)
        bounds.check("workers", self.workers)

    @property
    def url(self) -> str:
        """The page's address, as a browser takes it ([::1] for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def is_loopback(host: str) -> bool:
    """True when `host` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False
