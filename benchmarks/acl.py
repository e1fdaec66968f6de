"""The acl suite: what logging in costs kvstore per command (issue 19: at most 5 % loss).

Three kvstore servers (CPython, ``--fsync no``) run side by side and are measured in turn
(``suites.interleaved``) with redis-benchmark SET and GET at -c 50 -P 1 and -P 16: one
with no password, one with ``--requirepass`` (redis-benchmark ``-a``), and one whose
clients log in as an ACL user limited to redis-benchmark's keys (``~key:*``) and the read
and write categories (``--user``, ``-a``). Each row is the median of the rounds with its
per-round ratio to the no-password server's and the server's CPU per command.
"""

from __future__ import annotations

import contextlib

from benchmarks import procs
from benchmarks.suites import CPY, Run, interleaved

PASSWORD = "bench-password"
USER = "bench"
# redis-benchmark's SET and GET use keys key:<12 digits>.
USER_RULES = ("on", ">" + PASSWORD, "~key:*", "+@read", "+@write")
TESTS = ("set", "get")
PIPELINES = (1, 16)
REFERENCE = "kvstore, no password"


def add_user(port: int) -> None:
    """Create the benchmark's ACL user on the server at ``port`` (ServerError if refused)."""
    reply = procs.command(port, "ACL", "SETUSER", USER, *USER_RULES)
    if reply != b"+OK":
        raise procs.ServerError("ACL SETUSER refused: %r" % (reply,))


def servers(run: Run, stack: contextlib.ExitStack) -> list:
    """Start the three servers in ``stack``; return ``[(label, Server)]``, the reference first.

    Each Server's ``auth`` holds the redis-benchmark arguments that log its clients in.
    """
    plain = stack.enter_context(run.kvstore(CPY))
    password = run.kvstore(CPY, extra=("--requirepass", PASSWORD))
    password.auth = ("-a", PASSWORD)
    stack.enter_context(password)
    user = stack.enter_context(run.kvstore(CPY))
    add_user(user.port)
    user.auth = ("--user", USER, "-a", PASSWORD)
    return [(REFERENCE, plain), ("kvstore, requirepass", password),
            ("kvstore, ACL user ~key:* +@read +@write", user)]


def acl(run: Run) -> None:
    """SET and GET with no password, with requirepass and as a restricted ACL user."""
    group = "acl"
    run.references[group] = REFERENCE
    if not procs.kvstore_available():
        run.failed(group, REFERENCE, "all", "kvtwist/serve/tap.py not in this checkout yet")
        return
    with contextlib.ExitStack() as stack:
        try:
            measured = servers(run, stack)
        except (procs.ServerError, OSError) as e:
            run.failed(group, REFERENCE, "all", e)
            return
        for pipeline in PIPELINES:
            for test in TESTS:
                interleaved(run, group, measured, test, 50, pipeline,
                            run.requests(50, pipeline), against="no password", cpu=True)
