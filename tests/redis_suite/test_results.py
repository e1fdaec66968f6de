"""Tests of the helper-output parser, the kvstore/redis-server comparison and the expected file."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.redis_suite.results import (
    FAIL, PASS, FileRun, Outcome, clean_reason, compare, diff, format_line, merge_attempts,
    parse_expected, parse_output, totals, updated_expected)

FILE = "unit/type/incr"
OUTPUT = """Cleanup: may take some time... OK
Starting test server at port 16150
[ready]: 4242
\x1b[1;37;49mTesting unit/type/incr\x1b[0m
[\x1b[0;32;49mok\x1b[0m]: INCR against non existing key (1 ms)
[ok]: INCR against key created by incr itself (0 ms)
[err]: GETEX EX option in tests/unit/type/incr.tcl
n command 'getex', with args beginning with: 'foo' 'ex' '10'
ERR unknown command 'getex', with args beginning with: 'foo' 'ex' '10'
    while executing
"r getex foo ex 10"
[err]: INCR fails against a key holding a list in tests/unit/type/incr.tcl
Expected 'WRONGTYPE*' to equal or match 'OK'
[ignore]: INCR uses shared objects in the 0-9999 range: Tag: needs:debug denied
[skip]: Skipped by name
[ok]: Check encoding (1 ms)
[ok]: Check encoding (2 ms)
[1/1 done]: unit/type/incr (1 seconds)

                   The End

!!! WARNING The following tests failed:

*** [err]: GETEX EX option in tests/unit/type/incr.tcl
"""


def _run(mode, results, aborted=None, finished=True):
    run = FileRun(FILE, mode)
    for name, status, reason in results:
        run.add(name, status, reason)
    run.aborted, run.finished = aborted, finished
    return run


class ParseOutputTests(SynchronousTestCase):
    def test_statuses(self):
        """Every [ok]/[err]/[ignore]/[skip] line becomes a result under its test name."""
        run = parse_output(OUTPUT, FILE, "singledb")
        self.assertEqual(
            [(name, status) for name, (status, _) in run.results.items()],
            [("INCR against non existing key", "ok"),
             ("INCR against key created by incr itself", "ok"),
             ("GETEX EX option", "err"), ("INCR fails against a key holding a list", "err"),
             ("INCR uses shared objects in the 0-9999 range", "ignore"),
             ("Skipped by name", "skip"), ("Check encoding", "ok"), ("Check encoding (#2)", "ok")])
        self.assertTrue(run.finished)
        self.assertIsNone(run.aborted)

    def test_error_reasons(self):
        """An error's reason is its whole first line: the stack trace's when the helper cut the
        message, the assertion's otherwise; the failed-tests recap adds nothing."""
        run = parse_output(OUTPUT, FILE, "singledb")
        self.assertEqual(run.results["GETEX EX option"][1],
                         "ERR unknown command 'getex', with args beginning with: ...")
        self.assertEqual(run.results["INCR fails against a key holding a list"][1],
                         "Expected 'WRONGTYPE*' to equal or match 'OK'")
        self.assertEqual(run.results["INCR uses shared objects in the 0-9999 range"][1],
                         "Tag: needs:debug denied")
        self.assertEqual(len(run.results), 8)

    def test_exception_aborts(self):
        """An [exception] marks the file aborted with the exception's message, unfinished."""
        text = ("[ok]: INCR against non existing key (1 ms)\n"
                "[exception]: Executing test client: ERR DB index is out of range.\n"
                "ERR DB index is out of range\n    while executing\n")
        run = parse_output(text, FILE, "multidb")
        self.assertFalse(run.finished)
        self.assertEqual(run.aborted, "exception in file: ERR DB index is out of range")
        self.assertEqual(list(run.results), ["INCR against non existing key"])

    def test_error_outside_a_test(self):
        """An [err] not naming a test (a start_server body failed) is a block error."""
        text = "[err]: R DB index is out of range\nERR DB index is out of range\n"
        run = parse_output(text, FILE, "multidb")
        self.assertEqual(run.block_errors, ["ERR DB index is out of range"])
        self.assertEqual(len(run.results), 0)

    def test_timeout(self):
        """The helper's [TIMEOUT] report marks the file aborted."""
        run = parse_output("[ok]: a (1 ms)\n[TIMEOUT]: clients state report follows.\n", FILE,
                           "singledb")
        self.assertIn("timeout", run.aborted)
        self.assertFalse(run.finished)

    def test_done_of_another_file(self):
        """Only the done line of the file asked for marks the run finished."""
        self.assertFalse(parse_output("[1/1 done]: unit/other (1 seconds)\n", FILE, "x").finished)

    def test_clean_reason(self):
        """Reasons are one line without the scratch path, long numbers as <N>, cut short."""
        self.assertEqual(
            clean_reason("Expected  '1796395425'\n in file /tmp/x-1/a/redis-tests/tests/u.tcl"),
            "Expected '<N>' in file tests/u.tcl")
        self.assertEqual(len(clean_reason("x" * 1000)), 240)

    def test_clean_reason_drops_random_parts(self):
        """The arguments an unknown-command error echoes (random in fuzzers) and the helper's
        assertion context are left out."""
        self.assertEqual(
            clean_reason("Expected 'ERR unknown command 'setbit', with args beginning with: "
                         "'mykey' '688' '-1'' to match '*range*' (context: type source line 87)"),
            "Expected 'ERR unknown command 'setbit', with args beginning with: ...' to match "
            "'*range*'")
        self.assertEqual(clean_reason("ERR unknown command 'x', with args beginning with: "),
                         "ERR unknown command 'x', with args beginning with: ...")

    def test_clean_reason_is_idempotent(self):
        """Cleaning a cleaned reason changes nothing (the expected file is cleaned twice)."""
        for text in ("ERR unknown command 'x', with args beginning with: 'a' 'b'",
                     "Expected 'ERR unknown command 'x', with args beginning with: 'a'' to match "
                     "'*z*' (context: x)", "x" * 1000, "file /t/redis-tests/tests/a 1234567"):
            self.assertEqual(clean_reason(clean_reason(text)), clean_reason(text))


class CompareTests(SynchronousTestCase):
    def test_outcomes(self):
        """kvstore's status per test redis-server ran: passed, failed with the reason, or not
        reached when kvstore's run aborted; tests both skipped are left out."""
        redis = _run("singledb", [("a", "ok", ""), ("b", "ok", ""), ("c", "ok", ""),
                                  ("d", "ignore", "Tag: x denied"), ("e", "err", "boom")])
        kv = _run("singledb", [("a", "ok", ""), ("b", "err", "ERR nope"),
                               ("d", "ignore", "Tag: x denied")],
                  aborted="exception in file: ERR bad", finished=False)
        outcomes = compare(redis, kv)
        self.assertEqual([(o.name, o.status, o.reason, o.redis_passed) for o in outcomes], [
            ("a", PASS, "", True), ("b", FAIL, "ERR nope", True),
            ("c", FAIL, "not reached (exception in file: ERR bad)", True),
            ("e", FAIL, "not reached (exception in file: ERR bad)", False)])

    def test_missing_from_finished_run(self):
        """A test kvstore's finished run never reported is 'not run', and kvstore-only tests
        are kept."""
        outcomes = compare(_run("m", [("a", "ok", "")]), _run("m", [("z", "ok", "")]))
        self.assertEqual([(o.name, o.status, o.redis_passed) for o in outcomes],
                         [("a", FAIL, True), ("z", PASS, False)])
        self.assertIn("not run", outcomes[0].reason)

    def test_merge_attempts(self):
        """A test failing first and passing on the retry passes, and is reported flaky."""
        first = [Outcome("m", FILE, "a", FAIL, "x", True), Outcome("m", FILE, "b", FAIL, "y", True)]
        retry = [Outcome("m", FILE, "a", PASS, "", True), Outcome("m", FILE, "b", FAIL, "y", True)]
        merged, flaky = merge_attempts(first, retry)
        self.assertEqual([o.status for o in merged], [PASS, FAIL])
        self.assertEqual(flaky, [("m", FILE, "a")])

    def test_totals(self):
        """Totals count redis-server's passes and kvstore's passes among them, per file, per
        mode and overall."""
        outcomes = [Outcome("s", "f", "a", PASS, "", True), Outcome("s", "f", "b", FAIL, "", True),
                    Outcome("s", "g", "c", PASS, "", False), Outcome("m", "f", "a", PASS, "", True)]
        table = totals(outcomes)
        self.assertEqual(list(table), [("s", "f"), ("s", "g"), ("m", "f"), ("s", "total"),
                                       ("m", "total"), ("all", "total")])
        self.assertEqual((table[("s", "f")].redis, table[("s", "f")].both), (2, 1))
        self.assertEqual(table[("s", "f")].share, 50.0)
        self.assertEqual(table[("s", "g")].share, 100.0)
        self.assertEqual((table[("all", "total")].redis, table[("all", "total")].kvstore), (3, 3))


class ExpectedFileTests(SynchronousTestCase):
    def test_round_trip(self):
        """Lines are mode, file, name, pass or fail and reason, tab separated."""
        outcome = Outcome("singledb", FILE, "a\tb", FAIL, "ERR x\ty", True)
        line = format_line(outcome)
        self.assertEqual(line, "singledb\tunit/type/incr\ta b\tfail\tERR x y")
        self.assertEqual(dict(parse_expected(line + "\n# comment\n\n")),
                         {("singledb", FILE, "a b"): ("fail", "ERR x y")})
        self.assertRaises(ValueError, parse_expected, "singledb\tf\tname\tmaybe\n")

    def test_diff(self):
        """A test expected to pass that fails or vanished is a regression; expected failures
        that pass are improvements; tests absent from the file are new; pairs not run are not
        judged."""
        expected = parse_expected(
            "s\tf\ta\tpass\ns\tf\tb\tfail\tx\ns\tf\tgone\tpass\ns\tother\tq\tpass\n")
        outcomes = [Outcome("s", "f", "a", FAIL, "ERR y", True),
                    Outcome("s", "f", "b", PASS, "", True),
                    Outcome("s", "f", "n1", PASS, "", True),
                    Outcome("s", "f", "n2", FAIL, "z", True)]
        result = diff(expected, outcomes, {("s", "f")})
        self.assertEqual(result.regressions, [(("s", "f", "a"), "ERR y"),
                                              (("s", "f", "gone"), "not run by either server")])
        self.assertEqual(result.improvements, [("s", "f", "b")])
        self.assertEqual(result.new_passes, [("s", "f", "n1")])
        self.assertEqual(result.new_failures, [(("s", "f", "n2"), "z")])

    def test_update_is_sorted_and_stable(self):
        """The rewritten file replaces only the pairs run, is sorted, and is the same text
        whatever order the outcomes came in."""
        expected = parse_expected("s\tf\told\tpass\ns\tother\tq\tfail\tr\n")
        outcomes = [Outcome("s", "f", "b", FAIL, "ERR 1234567", True),
                    Outcome("s", "f", "a", PASS, "", True)]
        text = updated_expected(expected, outcomes, {("s", "f")})
        self.assertEqual(text, "s\tf\ta\tpass\ns\tf\tb\tfail\tERR <N>\ns\tother\tq\tfail\tr\n")
        self.assertEqual(updated_expected(expected, outcomes[::-1], {("s", "f")}), text)
        self.assertEqual(updated_expected(parse_expected(text), outcomes, {("s", "f")}), text)
