"""``python -m benchmarks``: run the selected suites and write the table and chart."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks import (
    acl, cluster, datatypes, durability, procs, proxying, report, sharding, stalls, suites)

RUNNERS = (("core", suites.core), ("pypy", suites.core), ("dialects", suites.dialects),
           ("fsync", durability.fsync), ("fsync", durability.fsync_rounds),
           ("memory", durability.memory),
           ("restart", durability.restart), ("proxy", proxying.proxy),
           ("stalls", stalls.stalls), ("types", datatypes.types),
           ("typememory", datatypes.typememory), ("acl", acl.acl), ("cluster", cluster.cluster),
           ("sharding", sharding.sharding))
HERE = os.path.dirname(os.path.abspath(__file__))


def machine() -> str:
    """Return a markdown paragraph naming the CPU, core count and software versions."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = ["%d cores, %s, %s" % (os.cpu_count() or 0, model, platform.platform())]
    for label, python in (("CPython", procs.CPYTHON), ("PyPy", procs.PYPY)):
        if os.path.exists(python):
            parts.append("%s %s" % (label, _output(
                [python, "-c", "import sys; print(sys.version.replace(chr(10), ' '))"])))
    parts.append(_output(["redis-server", "--version"]))
    parts.append(_output(["redis-benchmark", "--version"]))
    return "; ".join(p for p in parts if p)


def cpu_times(path: str = "/proc/stat"):
    """Return ``(steal, total)`` jiffies of all CPUs so far, or None where there is no such file."""
    try:
        with open(path) as stat:
            fields = [int(field) for field in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) == 8 else 0), sum(fields)


def steal_share(before, after):
    """Return the share (0-1) of CPU time the hypervisor took between two cpu_times, or None."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def steal_note(shares: list) -> str:
    """Return the header's sentence on CPU steal from ``[(suite, share)]`` (empty if unknown)."""
    known = [(name, share) for name, share in shares if share is not None]
    if not known:
        return ""
    return ("CPU time taken by the hypervisor (steal, /proc/stat) while each suite ran: %s. "
            "Figures from a suite with much steal are lower than the machine can do, and "
            "its ratios noisier." % ", ".join("%s %.0f %%" % (name, 100 * share)
                                              for name, share in known))


def _output(argv) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def parse_args(argv):
    """Return the parsed command line (raises SystemExit with usage on bad input)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--suite", action="append", choices=suites.SUITES,
                        help="run only this suite (repeatable; default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes: about a minute")
    parser.add_argument("--results", default=os.path.join(HERE, "results"),
                        help="directory for latest.md and latest.png")
    parser.add_argument("--publish", action="store_true",
                        help="also copy the table and chart to benchmarks/latest.{md,png}")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Run the benchmark; returns 0, or 1 when some measurement failed."""
    args = parse_args(argv)
    selected = tuple(args.suite or suites.SUITES)
    for tool in ("redis-server", "redis-benchmark"):
        if shutil.which(tool) is None:
            sys.stderr.write("%s is not on PATH (Debian package redis-server/redis-tools)\n"
                             % tool)
            return 2
    workdir = tempfile.mkdtemp(prefix="kvtwist-bench-")
    try:
        return _run(args, selected, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # also when a suite raised


def _run(args, selected: tuple, workdir: str) -> int:
    run = suites.Run(workdir, args.quick, selected)
    run.progress("suites: %s%s; work directory %s" % (
        ", ".join(selected), " (quick)" if args.quick else "", workdir))
    done = set()
    steal = []  # (suite, share of CPU time stolen while it ran)
    try:
        for name, runner in RUNNERS:
            if name in selected and runner not in done:
                done.add(runner)
                before = cpu_times()
                runner(run)
                steal.append((name, steal_share(before, cpu_times())))
    except KeyboardInterrupt:
        run.progress("interrupted: writing what was measured")
    table = report.markdown(run.rows, run.references, run.ceilings)
    note = steal_note(_merge(steal))
    header = "# kvtwist benchmark%s, %s\n\n%s\n\n%s" % (
        " (quick)" if args.quick else "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine(), note + "\n\n" if note else "")
    os.makedirs(args.results, exist_ok=True)
    md_path = os.path.join(args.results, "latest.md")
    png_path = os.path.join(args.results, "latest.png")
    with open(md_path, "w") as out:
        out.write(header + table)
    charted = report.chart(run.rows, run.references, png_path,
                           "kvtwist vs redis-server, same run (%s)" % ", ".join(selected))
    sys.stdout.write(header + table)
    run.progress("wrote %s%s (%.0fs)" % (md_path, " and " + png_path if charted else "",
                                         time.monotonic() - run.began))
    if args.publish:
        shutil.copy(md_path, os.path.join(HERE, "latest.md"))
        if charted:
            shutil.copy(png_path, os.path.join(HERE, "latest.png"))
    return 1 if any(row.value is None for row in run.rows) else 0


def _merge(shares: list) -> list:
    # Suites with two runners (fsync) are reported once, as the mean of their parts.
    merged = {}
    for name, share in shares:
        if share is not None:
            merged.setdefault(name, []).append(share)
    return [(name, sum(parts) / len(parts)) for name, parts in merged.items()]


if __name__ == "__main__":
    sys.exit(main())
