"""Command-line handling shared by the ``twistd kvstore`` and ``twistd kvproxy`` plugins."""

from __future__ import annotations

import os
import platform
import sys

from twisted.python import usage

from kvtwist import __version__


# PyPy's GC nursery (young generation) for the servers. PyPy sizes it from the CPU's cache
# (1 MB on the 2-core test machine) and reads it only from the environment at start-up.
# A server's reads arrive in 64 kB buffers and a 16 MB value is assembled from them:
# with 1 MB, a minor collection runs every ~16 reads and copies the pieces still held,
# and the major collections they feed ran about once a second. Measured in the soak
# (PyPy servers, 30 s, same load): with 16 MB kvproxy spent 2.6 s in GC instead of 7.0
# (its major collections 9 instead of 20) and kvstore 1.7 s instead of 4.2.
PYPY_NURSERY = "16MB"


def pypy_restart(implementation: str, executable: str, main_file, argv: list, environ: dict):
    """``(argv, environ)`` to re-run twistd with PYPY_NURSERY as PyPy's GC nursery, or None.

    Only PyPy running the ``twistd`` script as its main program (``main_file``: the
    ``__main__`` module's file, None if it has none; a program that runs twistd inside
    itself is left alone), and only when PYPY_GC_NURSERY is not set (a value set by the
    user is kept, and the restarted process has it set).
    """
    if implementation != "PyPy" or "PYPY_GC_NURSERY" in environ:
        return None
    if not main_file or os.path.basename(main_file) != "twistd":
        return None
    return ([executable, main_file] + list(argv[1:]),
            dict(environ, PYPY_GC_NURSERY=PYPY_NURSERY))


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
        # twistd's own command line under PyPy: start again with the nursery set (before
        # anything is opened, logged or daemonised; see PYPY_NURSERY).
        main_file = getattr(sys.modules.get("__main__"), "__file__", None)
        restart = pypy_restart(platform.python_implementation(), sys.executable, main_file,
                               sys.argv, os.environ)
        if restart is not None and self._is_command_line():
            os.execve(sys.executable, restart[0], restart[1])
        # Parsed before twistd imports the reactor: unless one was chosen (--reactor) or
        # already imported, the servers run on kvtwist.loop.epoll's.
        if sys.platform.startswith("linux"):
            from kvtwist.loop import epoll

            epoll.install_default()
        if not self["listen"]:
            self["listen"] = [self.default_listen]

    def _is_command_line(self) -> bool:
        """Whether these options are twistd's command line (not ones parsed in-process)."""
        return getattr(self, "parent", None) is not None  # twistd sets it on its subcommand
