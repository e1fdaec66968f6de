"""Tests of the runner's command line."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.redis_suite.cli import EXPECTED, EXPECTED_PROXY, PROXY_CI_FILES, measure, parse_args
from tests.redis_suite.results import FileRun, parse_expected
from tests.redis_suite.runner import FILES, MODES, OWN_FILES


class ParseArgsTests(SynchronousTestCase):
    def test_defaults(self):
        """By default every file runs in its modes (singledb and multidb, or own), two at a
        time, against expected.txt."""
        args = parse_args([])
        self.assertEqual(args.files, FILES + OWN_FILES)
        self.assertEqual(args.modes, ["singledb", "multidb", "own"])
        self.assertEqual(MODES, args.modes)
        self.assertEqual(len(args.pairs), 2 * len(FILES) + len(OWN_FILES))
        self.assertIn(("own", "unit/acl"), args.pairs)
        self.assertNotIn(("singledb", "unit/acl"), args.pairs)
        self.assertEqual((args.jobs, args.ports, args.expected), (2, (16100, 16199), EXPECTED))
        self.assertIsNone(args.kvstore_args)

    def test_subsets(self):
        """--files takes names with or without unit/, comma or space separated; --modes too."""
        args = parse_args(["--files", "type/string, unit/quit other", "--modes", "multidb",
                           "--ports", "17000-17009"])
        self.assertEqual(args.files, ["unit/type/string", "unit/quit", "unit/other"])
        self.assertEqual(args.modes, ["multidb"])
        self.assertEqual(args.ports, (17000, 17009))

    def test_unknown_mode(self):
        """An unknown mode is a usage error."""
        self.assertRaises(SystemExit, parse_args, ["--modes", "cluster"])

    def test_own_mode(self):
        """--modes own runs the own-server files only; asking for an own-server file in an
        external mode alone runs nothing, a usage error."""
        args = parse_args(["--modes", "own", "--files", "acl, limits quit"])
        self.assertEqual(args.pairs, [("own", "unit/acl"), ("own", "unit/limits")])
        self.assertRaises(SystemExit, parse_args, ["--modes", "singledb", "--files", "auth"])


class _FakeRunner:
    """Stands in for Runner: canned FileRuns per (server, mode, file, attempt)."""

    def __init__(self, runs):
        self.runs, self.jobs, self.processes = runs, [], None

    def run(self, job):
        self.jobs.append((job.server, job.mode, job.file, job.attempt))
        return self.runs[(job.server, job.mode, job.file, job.attempt)]

    def log(self, text):
        pass


def _file_run(mode, file, results, finished=True):
    run = FileRun(file, mode)
    for name, status in results:
        run.add(name, status, "why" if status == "err" else "")
    run.finished = finished
    return run


class MeasureTests(SynchronousTestCase):
    def test_retry_and_broken_reference(self):
        """A file with a regression is rerun once against a fresh kvstore and a test passing
        then is flaky; a file whose redis-server run did not finish is reported broken."""
        f, g = "unit/f", "unit/g"
        runner = _FakeRunner({
            ("kvstore", "singledb", f, 1): _file_run("singledb", f, [("a", "err"), ("b", "err")]),
            ("redis", "singledb", f, 1): _file_run("singledb", f, [("a", "ok"), ("b", "ok")]),
            ("kvstore", "singledb", f, 2): _file_run("singledb", f, [("a", "ok"), ("b", "err")]),
            ("kvstore", "singledb", g, 1): _file_run("singledb", g, [("c", "ok")]),
            ("redis", "singledb", g, 1): _file_run("singledb", g, [("c", "ok")], False),
        })
        args = parse_args(["--files", "f,g", "--modes", "singledb", "--jobs", "1"])
        expected = parse_expected("singledb\tunit/f\ta\tpass\nsingledb\tunit/f\tb\tfail\tx\n")
        outcomes, flaky, broken = measure(args, runner, expected)
        self.assertEqual([(o.name, o.status) for o in outcomes],
                         [("a", "pass"), ("b", "fail"), ("c", "pass")])
        self.assertEqual(flaky, [("singledb", f, "a")])
        self.assertEqual(broken, [("singledb", g)])
        self.assertEqual(runner.jobs[-1], ("kvstore", "singledb", f, 2))
        self.assertEqual(len(runner.jobs), 5)

    def test_own_mode_runs(self):
        """An own-mode file runs once per server in the own mode and is judged there."""
        runner = _FakeRunner({
            ("kvstore", "own", "unit/acl", 1): _file_run("own", "unit/acl", [("a", "err")]),
            ("redis", "own", "unit/acl", 1): _file_run("own", "unit/acl", [("a", "ok")]),
        })
        args = parse_args(["--files", "acl", "--jobs", "1"])
        expected = parse_expected("own\tunit/acl\ta\tfail\tx\n")
        outcomes, flaky, broken = measure(args, runner, expected)
        self.assertEqual([(o.mode, o.name, o.status) for o in outcomes], [("own", "a", "fail")])
        self.assertEqual(sorted(runner.jobs), [("kvstore", "own", "unit/acl", 1),
                                               ("redis", "own", "unit/acl", 1)])
        self.assertEqual((flaky, broken), ([], []))


class ThroughProxyArgsTests(SynchronousTestCase):
    def test_through_proxy(self):
        """--through-proxy makes kvproxy in front of that backend the candidate, in the
        external modes only, judged against its own expected file, with --allow-admin."""
        args = parse_args(["--through-proxy", "redis"])
        self.assertEqual(args.candidate, "kvproxy-redis")
        self.assertEqual(args.files, FILES)
        self.assertEqual(args.modes, ["singledb", "multidb"])
        self.assertEqual(args.expected, EXPECTED_PROXY % ("redis",))
        self.assertNotEqual(args.expected, EXPECTED)
        self.assertEqual(args.proxy_args, "--allow-admin --inline-replies resp")
        self.assertEqual(parse_args([]).candidate, "kvstore")
        self.assertEqual(parse_args(["--through-proxy", "kvstore"]).candidate,
                         "kvproxy-kvstore")
        self.assertRaises(SystemExit, parse_args, ["--through-proxy", "memcached"])

    def test_ci_subset(self):
        """--proxy-ci picks the CI's subset of files unless --files names others."""
        args = parse_args(["--through-proxy", "kvstore", "--proxy-ci"])
        self.assertEqual(args.files, PROXY_CI_FILES)
        self.assertTrue(set(PROXY_CI_FILES) <= set(FILES))
        args = parse_args(["--through-proxy", "kvstore", "--proxy-ci", "--files", "quit"])
        self.assertEqual(args.files, ["unit/quit"])

    def test_measure_through_proxy(self):
        """Through kvproxy the candidate's runs are compared with redis-server's."""
        f = "unit/f"
        runner = _FakeRunner({
            ("kvproxy-redis", "multidb", f, 1): _file_run("multidb", f, [("a", "ok")]),
            ("redis", "multidb", f, 1): _file_run("multidb", f, [("a", "ok")]),
        })
        args = parse_args(["--files", "f", "--modes", "multidb", "--jobs", "1",
                           "--through-proxy", "redis"])
        outcomes, flaky, broken = measure(args, runner, {})
        self.assertEqual([(o.name, o.status) for o in outcomes], [("a", "pass")])
        self.assertEqual(sorted(runner.jobs), [("kvproxy-redis", "multidb", f, 1),
                                               ("redis", "multidb", f, 1)])
