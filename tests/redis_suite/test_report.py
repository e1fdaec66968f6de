"""Tests of the runner's console table, diff summary and markdown report."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.redis_suite.report import markdown, summary, table
from tests.redis_suite.results import FAIL, PASS, Diff, Outcome

OUTCOMES = [
    Outcome("singledb", "unit/a", "one", PASS, "", True),
    Outcome("singledb", "unit/a", "two", FAIL, "ERR `x`", True),
    Outcome("singledb", "unit/a", "three", FAIL, "ERR y", False),
    Outcome("multidb", "unit/a", "one", FAIL, "not reached (exception in file: ERR z)", True),
    Outcome("multidb", "unit/a", "two", FAIL, "not reached (exception in file: ERR z)", True),
]


class ReportTests(SynchronousTestCase):
    def test_table(self):
        """The table has a row per mode and file, then per-mode and overall totals."""
        rows = table(OUTCOMES).splitlines()
        self.assertEqual(rows[1].split(), ["singledb", "unit/a", "2", "1", "50.0%"])
        self.assertEqual(rows[2].split(), ["multidb", "unit/a", "2", "0", "0.0%"])
        self.assertEqual(rows[-1].split(), ["all", "total", "4", "1", "25.0%"])

    def test_summary(self):
        """Regressions and improvements are listed one per line; new tests are counted."""
        result = Diff()
        result.regressions.append((("singledb", "unit/a", "two"), "ERR x"))
        result.improvements.append(("singledb", "unit/a", "one"))
        result.new_failures.append((("multidb", "unit/a", "one"), "r"))
        lines = summary(result, [("singledb", "unit/a", "one")]).splitlines()
        self.assertEqual(lines[0], "REGRESSION  singledb unit/a: two -- ERR x")
        self.assertTrue(lines[1].startswith("improvement singledb unit/a: one"))
        self.assertTrue(lines[2].startswith("1 test(s) not in the expected file: 0 pass, 1 fail"))
        self.assertTrue(lines[3].startswith("flaky       singledb unit/a: one"))

    def test_markdown(self):
        """The report gives the totals, then failing tests per file and mode with reasons,
        tests not reached for one reason on one line, and marks tests redis-server fails."""
        text = markdown(OUTCOMES, 12.3, ["a note"])
        self.assertIn("kvstore passes **1** of the **4** tests redis-server passes (25.0%) in "
                      "12 s.", text)
        self.assertIn("- a note", text)
        self.assertIn("| **all** | **total** | 4 | 1 | 25.0% |", text)
        self.assertIn("#### unit/a (singledb): 2\n\n- two: `ERR 'x'`\n"
                      "- three: `ERR y` *(redis-server fails it too)*\n", text)
        self.assertIn("#### unit/a (multidb): 2\n\n- 2 test(s) not reached (exception in file: "
                      "ERR z): one; two\n", text)

    def test_markdown_own_mode(self):
        """Failing tests of the own mode are listed like the other modes'."""
        text = markdown(OUTCOMES + [Outcome("own", "unit/b", "four", FAIL, "ERR w", True)], 1,
                        [])
        self.assertIn("| own | unit/b | 1 | 0 | 0.0% |", text)
        self.assertIn("#### unit/b (own): 1\n\n- four: `ERR w`\n", text)
