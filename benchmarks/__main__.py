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

from benchmarks import durability, procs, proxying, report, suites

RUNNERS = (("core", suites.core), ("pypy", suites.core), ("dialects", suites.dialects),
           ("fsync", durability.fsync), ("fsync", durability.fsync_rounds),
           ("memory", durability.memory),
           ("restart", durability.restart), ("proxy", proxying.proxy))
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
    run = suites.Run(workdir, args.quick, selected)
    run.progress("suites: %s%s; work directory %s" % (
        ", ".join(selected), " (quick)" if args.quick else "", workdir))
    done = set()
    try:
        for name, runner in RUNNERS:
            if name in selected and runner not in done:
                done.add(runner)
                runner(run)
    except KeyboardInterrupt:
        run.progress("interrupted: writing what was measured")
    table = report.markdown(run.rows, run.references, run.ceilings)
    header = "# kvtwist benchmark%s, %s\n\n%s\n\n" % (
        " (quick)" if args.quick else "", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        machine())
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
    shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(row.value is None for row in run.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
