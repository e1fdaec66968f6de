"""The runner's figures as text: the console table, the diff summary and the markdown report."""

from __future__ import annotations

from typing import List

from tests.redis_suite.results import FAIL, Diff, Outcome, totals


def _share(total) -> str:
    return "%.1f%%" % (total.share,)


def table(outcomes: List[Outcome]) -> str:
    """A fixed-width table: per mode and file, redis-server's passes, kvstore's passes among
    them and the share, then per-mode and overall totals."""
    rows = ["%-9s %-20s %6s %8s %7s" % ("mode", "file", "redis", "kvstore", "share")]
    for (mode, file), total in totals(outcomes).items():
        if file == "total":
            rows.append("-" * 54)
        rows.append("%-9s %-20s %6d %8d %7s" % (mode, file, total.redis, total.both,
                                                _share(total)))
    return "\n".join(rows)


def summary(result: Diff, flaky: list) -> str:
    """Regressions, improvements, new failures and flaky tests, one per line."""
    lines = []
    for (mode, file, name), reason in result.regressions:
        lines.append("REGRESSION  %s %s: %s -- %s" % (mode, file, name, reason))
    for mode, file, name in result.improvements:
        lines.append("improvement %s %s: %s (now passes; --update records it)" % (mode, file,
                                                                                  name))
    if result.new_passes or result.new_failures:
        lines.append("%d test(s) not in the expected file: %d pass, %d fail (--update records "
                     "them)" % (len(result.new_passes) + len(result.new_failures),
                                len(result.new_passes), len(result.new_failures)))
    for mode, file, name in flaky:
        lines.append("flaky       %s %s: %s (failed, then passed on a retry)" % (mode, file,
                                                                                 name))
    return "\n".join(lines)


def _failures(group: List[Outcome]) -> List[str]:
    """Bullets for one file and mode: each failing test with its reason; the tests that were
    not reached for one same reason are one bullet."""
    lines, unreached = [], {}
    for outcome in group:
        if outcome.reason.startswith("not reached"):
            unreached.setdefault(outcome.reason, []).append(outcome.name)
            continue
        note = "" if outcome.redis_passed else " *(redis-server fails it too)*"
        lines.append("- %s: `%s`%s" % (outcome.name, outcome.reason.replace("`", "'"), note))
    for reason, names in unreached.items():
        lines.append("- %d test(s) %s: %s" % (len(names), reason, "; ".join(names)))
    return lines


def markdown(outcomes: List[Outcome], seconds: float, notes: List[str]) -> str:
    """The markdown report: totals per mode, per file, then every failing test with its
    reason, grouped by file and mode (for docs/compatibility.md to include)."""
    groups = totals(outcomes)
    out = ["## Redis 7.0.15 test suite", ""]
    out += ["kvstore passes **%d** of the **%d** tests redis-server passes (%s) in %.0f s." % (
        groups[("all", "total")].both, groups[("all", "total")].redis,
        _share(groups[("all", "total")]), seconds)] if ("all", "total") in groups else []
    out += [""] + ["- %s" % (note,) for note in notes] + ([""] if notes else [])
    out += ["| mode | file | redis-server passes | kvstore passes (of those) | share |",
            "|---|---|---:|---:|---:|"]
    for (mode, file), total in groups.items():
        bold = "**" if file == "total" else ""
        out.append("| %s%s%s | %s%s%s | %d | %d | %s |" % (
            bold, mode, bold, bold, file, bold, total.redis, total.both, _share(total)))
    failing = [o for o in outcomes if o.status == FAIL]
    out += ["", "### Tests kvstore fails (%d)" % (len(failing),)]
    files, modes = [], []
    for outcome in outcomes:
        if outcome.file not in files:
            files.append(outcome.file)
        if outcome.mode not in modes:
            modes.append(outcome.mode)
    for file in files:
        for mode in modes:
            group = [o for o in failing if o.file == file and o.mode == mode]
            if group:
                out += ["", "#### %s (%s): %d" % (file, mode, len(group)), ""]
                out += _failures(group)
    return "\n".join(out) + "\n"
