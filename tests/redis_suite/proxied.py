"""kvproxy as the runner's candidate (``--through-proxy redis|kvstore``): its names, its
command line, and the pair of processes (kvproxy and the backend it is in front of)."""

from __future__ import annotations

from typing import List, Optional

# kvproxy's candidates (``--through-proxy``): kvproxy in front of one of these backends.
PROXY = "kvproxy-"
PROXIED_BACKENDS = ("redis", "kvstore")
# The suite CONFIG SETs, FLUSHALLs and DEBUGs (kvproxy refuses them without --allow-admin)
# and sends inline commands, which redis-server answers in RESP.
DEFAULT_PROXY_ARGS = "--allow-admin --inline-replies resp"


def proxied(backend: Optional[str]) -> str:
    """The candidate server's name: kvstore, or kvproxy in front of ``backend``."""
    if backend is None:
        return "kvstore"
    if backend not in PROXIED_BACKENDS:
        raise ValueError("kvproxy's backend is one of %s, not %r"
                         % (", ".join(PROXIED_BACKENDS), backend))
    return PROXY + backend


def proxy_command(port: int, backend_port: int, args: List[str]) -> List[str]:
    """twistd kvproxy's arguments: listening on loopback ``port`` in front of the backend on
    loopback ``backend_port``, with ``args``."""
    return ["--listen", "tcp:%d:interface=127.0.0.1" % (port,),
            "--backend", "tcp:127.0.0.1:%d" % (backend_port,)] + list(args)


class Proxied:
    """kvproxy (``proxy``, a TwistdProcess) in front of a backend server we started; its
    ``process`` is kvproxy's, its ``log`` both logs."""

    def __init__(self, proxy, backend, backend_port: int) -> None:
        self.proxy, self.backend, self.backend_port = proxy, backend, backend_port
        self.process = proxy.process

    @property
    def log(self) -> str:
        return "=== kvproxy\n%s\n=== backend\n%s" % (self.proxy.log, self.backend.log)
