"""Command-line handling shared by the ``twistd kvstore`` and ``twistd kvproxy`` plugins."""

from __future__ import annotations

import sys

from twisted.python import usage

from kvtwist import __version__


class ServerOptions(usage.Options):
    """Options with a repeatable ``--listen`` (default: ``default_listen``) and ``--version``."""

    default_listen = ""

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self["listen"] = []

    def opt_listen(self, endpoint: str) -> None:
        """a server endpoint to listen on (repeatable)"""
        self["listen"].append(endpoint)

    opt_l = opt_listen

    def opt_version(self) -> None:
        """print the version and exit"""
        print("kvtwist %s" % (__version__,))
        raise SystemExit(0)

    def postOptions(self) -> None:
        # Parsed before twistd imports the reactor: unless one was chosen (--reactor) or
        # already imported, the servers run on kvtwist.loop.epoll's.
        if sys.platform.startswith("linux"):
            from kvtwist.loop import epoll

            epoll.install_default()
        if not self["listen"]:
            self["listen"] = [self.default_listen]
