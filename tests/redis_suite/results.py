"""Per-test results of Redis's test helper: parse its output, compare kvstore with redis-server,
and read, diff and rewrite the expected-results file (stdlib only)."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATUS = re.compile(r"^\[(ok|err|exception|skip|ignore)\]: (.*)$")
# Lines that start something new: the end of an [err]/[exception] block's message.
MARKER = re.compile(r"^(\[[a-zA-Z-]+\]: |\[\d+/\d+ |Testing |\[TIMEOUT\]|!!! WARNING|\*\*\* |"
                    r"Cleanup: |Starting test server|Killing still running)")
ELAPSED = re.compile(r" \(\d+ ms\)$")
IGNORED = re.compile(r": (Tag: .*|Not supported .*|large memory flag not provided)$")
DONE = re.compile(r"^\[\d+/\d+ done\]: (\S+)")
LONG_NUMBER = re.compile(r"\d{5,}")
SCRATCH_PATH = re.compile(r"[^\s'\"{}]*/redis-tests/tests/")
# Random arguments (fuzzing) and the helper's assertion context vary from run to run.
ARGS_ECHO = re.compile(r", with args beginning with:( \.\.\.| '[^']*'(?: '[^']*')*)?")
CONTEXT = re.compile(r" \(context: .*$")
REASON_LIMIT = 240

PASS, FAIL = "pass", "fail"


def clean_reason(text: str) -> str:
    """One stable line: whitespace folded, the scratch copy's path, the arguments an unknown
    command error echoes and the helper's "(context: ...)" left out, numbers of 5+ digits
    (times, ports) as <N>, cut to REASON_LIMIT characters, so that regenerating the expected
    file does not churn."""
    text = " ".join(text.split())
    text = SCRATCH_PATH.sub("tests/", text)
    text = CONTEXT.sub("", ARGS_ECHO.sub(", with args beginning with: ...", text))
    text = LONG_NUMBER.sub("<N>", text)
    if len(text) > REASON_LIMIT:
        text = text[:REASON_LIMIT - 3] + "..."
    return text


def _error_line(lines: List[str]) -> str:
    """The error of an [err] block's message lines: the helper cuts 10 characters off a
    non-assertion error ("assertion:" is 10 long) and then gives the whole error first in its
    stack trace, so the trace's first line is taken when it ends with the cut message."""
    if not lines:
        return "(no message)"
    message = lines[0]
    if len(lines) > 1 and lines[1].endswith(message) and len(lines[1]) > len(message):
        return lines[1]
    return message


class FileRun:
    """What one run of the helper on one test file reported: ``results`` maps each test name
    (a repeated name gets " (#2)", " (#3)"...) to (status, reason) in the order they ran;
    ``finished`` is whether the helper reported the file done; ``aborted`` why it stopped early
    (None if it did not); ``block_errors`` errors outside any test (a start_server body)."""

    def __init__(self, file: str, mode: str) -> None:
        self.file = file
        self.mode = mode
        self.results: Dict[str, Tuple[str, str]] = OrderedDict()
        self.finished = False
        self.aborted: Optional[str] = None
        self.block_errors: List[str] = []
        self.seconds = 0.0

    def add(self, name: str, status: str, reason: str = "") -> None:
        """Record a test's result, numbering a name already seen in this file."""
        name = " ".join(name.split())
        unique, count = name, 1
        while unique in self.results:
            count += 1
            unique = "%s (#%d)" % (name, count)
        self.results[unique] = (status, reason)

    def passed(self) -> List[str]:
        """Names of the tests that passed."""
        return [name for name, (status, _) in self.results.items() if status == "ok"]


def parse_output(text: str, file: str, mode: str) -> FileRun:
    """Parse the helper's output for ``file``; O(length of the output)."""
    run = FileRun(file, mode)
    lines = [ANSI.sub("", line).rstrip("\r") for line in text.splitlines()]
    suffix = " in tests/%s.tcl" % (file,)
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        done = DONE.match(line)
        if done:
            run.finished = run.finished or done.group(1) == file
            continue
        if line.startswith("[TIMEOUT]"):
            run.aborted = run.aborted or "the helper's --timeout expired (no progress)"
            continue
        match = STATUS.match(line)
        if not match:
            continue
        status, data = match.groups()
        if status == "ok":
            run.add(ELAPSED.sub("", data), "ok")
        elif status in ("skip", "ignore"):
            ignored = IGNORED.search(data) if status == "ignore" else None
            run.add(data[:ignored.start()] if ignored else data, status,
                    ignored.group(1) if ignored else "")
        else:
            body = []
            while index < len(lines) and not MARKER.match(lines[index]):
                body.append(lines[index])
                index += 1
            if status == "exception":
                first = data
                if first.startswith("Executing test client: "):
                    first = first[len("Executing test client: "):]
                if not first.strip() and body:
                    first = body[0]
                run.aborted = "exception in file: %s" % (clean_reason(first.rstrip(".")),)
            elif data.endswith(suffix):
                run.add(data[:-len(suffix)], "err", clean_reason(_error_line(body)))
            else:
                # An error outside any test: the rest of that start_server block did not run.
                run.block_errors.append(clean_reason(_error_line([data] + body)))
    return run


class Outcome:
    """One test in one mode: kvstore's status (PASS/FAIL), why it failed, and whether the
    reference redis-server passed it."""

    def __init__(self, mode: str, file: str, name: str, status: str, reason: str,
                 redis_passed: bool) -> None:
        self.mode, self.file, self.name = mode, file, name
        self.status, self.reason, self.redis_passed = status, reason, redis_passed

    @property
    def key(self) -> Tuple[str, str, str]:
        return (self.mode, self.file, self.name)

    def __repr__(self) -> str:
        return "Outcome(%r, %r)" % (self.key, self.status)


def _missing_reason(kv: FileRun) -> str:
    if kv.aborted:
        return "not reached (%s)" % (kv.aborted,)
    if kv.block_errors:
        return "not reached (error outside a test: %s)" % (kv.block_errors[0],)
    if not kv.finished:
        return "not reached (the helper stopped before the file ended)"
    return "not run against kvstore (the file ended without it)"


def compare(redis: FileRun, kv: FileRun) -> List[Outcome]:
    """The outcome of every test either server ran (skipped/ignored by both are left out), in
    redis-server's order then kvstore's extras; O(tests)."""
    outcomes = []
    names = list(redis.results) + [name for name in kv.results if name not in redis.results]
    for name in names:
        redis_status = redis.results.get(name, ("missing", ""))[0]
        kv_status, kv_reason = kv.results.get(name, ("missing", ""))
        if redis_status in ("skip", "ignore", "missing") and kv_status in (
                "skip", "ignore", "missing"):
            continue
        if kv_status == "ok":
            status, reason = PASS, ""
        elif kv_status == "err":
            status, reason = FAIL, kv_reason
        elif kv_status == "missing":
            status, reason = FAIL, _missing_reason(kv)
        else:
            status, reason = FAIL, "%s on kvstore: %s" % (kv_status, kv_reason)
        outcomes.append(Outcome(kv.mode, kv.file, name, status, reason, redis_status == "ok"))
    return outcomes


def merge_attempts(first: List[Outcome], retry: List[Outcome]) -> Tuple[List[Outcome], List]:
    """A test passes if it passed in either attempt; return the merged outcomes and the keys of
    tests that failed first and passed on the retry (flaky); O(tests)."""
    passed_again = {o.key for o in retry if o.status == PASS}
    merged, flaky = [], []
    for outcome in first:
        if outcome.status != PASS and outcome.key in passed_again:
            flaky.append(outcome.key)
            outcome = Outcome(outcome.mode, outcome.file, outcome.name, PASS, "",
                              outcome.redis_passed)
        merged.append(outcome)
    return merged, flaky


class Totals:
    """Counts for a group of outcomes: tests redis-server passes, tests kvstore passes, and
    tests both pass (the share is both / redis)."""

    def __init__(self) -> None:
        self.redis = self.kvstore = self.both = self.tests = 0

    def add(self, outcome: Outcome) -> None:
        self.tests += 1
        self.redis += outcome.redis_passed
        self.kvstore += outcome.status == PASS
        self.both += outcome.redis_passed and outcome.status == PASS

    @property
    def share(self) -> float:
        """kvstore's passes among redis-server's passes, in percent (100 when redis has none)."""
        return 100.0 * self.both / self.redis if self.redis else 100.0


def totals(outcomes: List[Outcome]) -> "OrderedDict":
    """Totals keyed by (mode, file), (mode, "total") and ("all", "total"), in first-seen
    order; O(outcomes)."""
    table: OrderedDict = OrderedDict()
    for outcome in outcomes:
        for key in ((outcome.mode, outcome.file), (outcome.mode, "total"), ("all", "total")):
            table.setdefault(key, Totals()).add(outcome)
    ordered = OrderedDict((key, value) for key, value in table.items() if key[1] != "total")
    for key, value in table.items():
        if key[1] == "total" and key[0] != "all":
            ordered[key] = value
    if ("all", "total") in table:
        ordered[("all", "total")] = table[("all", "total")]
    return ordered


# The expected-results file: "mode<TAB>file<TAB>name<TAB>pass" or "...<TAB>fail<TAB>reason".

def format_line(outcome: Outcome) -> str:
    """The expected-file line of an outcome."""
    fields = [outcome.mode, outcome.file, outcome.name.replace("\t", " "), outcome.status]
    if outcome.status == FAIL:
        fields.append(clean_reason(outcome.reason))
    return "\t".join(fields)


def parse_expected(text: str) -> "OrderedDict":
    """(mode, file, name) -> (status, reason) from the expected file; blank lines and lines
    starting with # are comments; a malformed line raises ValueError."""
    expected: OrderedDict = OrderedDict()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 4 or fields[3] not in (PASS, FAIL):
            raise ValueError("expected file line %d is not mode<TAB>file<TAB>test<TAB>pass|fail"
                             "[<TAB>reason]: %r" % (number, line))
        expected[(fields[0], fields[1], fields[2])] = (fields[3], "\t".join(fields[4:]))
    return expected


class Diff:
    """Against the expected results: regressions (expected to pass, did not), improvements
    (expected to fail, passed), new passes and new failures (tests not in the expected file)."""

    def __init__(self) -> None:
        self.regressions: List[Tuple[Tuple[str, str, str], str]] = []
        self.improvements: List[Tuple[str, str, str]] = []
        self.new_passes: List[Tuple[str, str, str]] = []
        self.new_failures: List[Tuple[Tuple[str, str, str], str]] = []


def diff(expected: "OrderedDict", outcomes: List[Outcome], ran: set) -> Diff:
    """Compare outcomes with the expected results of the (mode, file) pairs in ``ran`` (other
    lines of the expected file are not judged); O(tests)."""
    result = Diff()
    seen = set()
    for outcome in outcomes:
        seen.add(outcome.key)
        want = expected.get(outcome.key)
        if outcome.status == PASS:
            if want is None:
                result.new_passes.append(outcome.key)
            elif want[0] == FAIL:
                result.improvements.append(outcome.key)
        elif want is None:
            result.new_failures.append((outcome.key, outcome.reason))
        elif want[0] == PASS:
            result.regressions.append((outcome.key, outcome.reason))
    for key, (status, _) in expected.items():
        if (key[0], key[1]) in ran and key not in seen and status == PASS:
            result.regressions.append((key, "not run by either server"))
    return result


def updated_expected(expected: "OrderedDict", outcomes: List[Outcome], ran: set) -> str:
    """The expected file's new text: lines of the (mode, file) pairs in ``ran`` replaced by the
    outcomes, the others kept; sorted, one line per test, ending in a newline."""
    lines = []
    for key, (status, reason) in expected.items():
        if (key[0], key[1]) not in ran:
            lines.append("\t".join(list(key) + [status] + ([reason] if status == FAIL else [])))
    lines.extend(format_line(outcome) for outcome in outcomes)
    lines.sort()
    return "".join(line + "\n" for line in lines)
