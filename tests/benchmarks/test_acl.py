"""Tests for benchmarks/acl.py: the acl suite's servers, logins and rows (no timing)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from benchmarks import acl, procs, redisbench
from tests.benchmarks.test_datatypes import FakeServer, quiet_run


class AclSuiteTests(SynchronousTestCase):
    """Three kvstore servers, each benchmarked with the arguments that log its clients in."""

    def test_servers_logins_and_rows(self) -> None:
        """requirepass is given to kvstore and -a to redis-benchmark; the ACL user is made
        with ACL SETUSER and used with --user; rows compare each with the no-password one."""
        options = []

        def kvstore(interpreter, fsync="no", data_dir=None, extra=()):
            options.append(tuple(extra))
            return FakeServer("kv", 10 + len(options))

        sent = []
        self.patch(procs, "command", lambda port, *args: sent.append((port,) + args) or b"+OK")
        calls = []

        def bench(port, tests, conns, pipeline, n, timeout, keyspace, auth):
            calls.append((port, tests[0], pipeline, auth))
            return {tests[0].upper(): {"ops": 1000.0 / port, "p50": 1.0, "p99": 2.0}}

        run = quiet_run(("acl",))
        self.addCleanup(run.out.close)
        self.patch(run, "kvstore", kvstore)
        self.patch(procs, "kvstore_available", lambda: True)
        self.patch(procs, "cpu_seconds", lambda pid: {pid: (0.0, 0.0)})
        self.patch(redisbench, "run", bench)
        acl.acl(run)
        self.assertEqual(options, [(), ("--requirepass", acl.PASSWORD), ()])
        self.assertEqual(sent, [(13, "ACL", "SETUSER", "bench", "on", ">" + acl.PASSWORD,
                                 "~key:*", "+@read", "+@write")])
        self.assertEqual({port: auth for port, _, _, auth in calls},
                         {11: (), 12: ("-a", acl.PASSWORD),
                          13: ("--user", "bench", "-a", acl.PASSWORD)})
        self.assertEqual(len(run.rows), 3 * 2 * 2)
        self.assertEqual(run.references, {"acl": acl.REFERENCE})
        user = [row for row in run.rows if "ACL user" in row.server]
        self.assertEqual([(row.test, row.pipeline) for row in user],
                         [("SET", 1), ("GET", 1), ("SET", 16), ("GET", 16)])
        self.assertIn("x no password per round 0.85-0.85", user[0].note)

    def test_refused_user(self) -> None:
        """A server refusing ACL SETUSER gives a failed row, and nothing is benchmarked."""
        self.patch(procs, "command", lambda port, *args: b"-ERR unknown command")
        self.patch(procs, "kvstore_available", lambda: True)
        self.patch(redisbench, "run", lambda *a, **k: self.fail("benchmarked"))
        run = quiet_run(("acl",))
        self.addCleanup(run.out.close)
        self.patch(run, "kvstore", lambda *a, **k: FakeServer("kv", 1))
        acl.acl(run)
        self.assertEqual([(row.value, row.test) for row in run.rows], [(None, "all")])
        self.assertIn("ACL SETUSER refused", run.rows[0].note)
