"""``python -m tests.redis_suite``: Redis 7.0.15's test suite against kvstore and redis-server.

With ``--through-proxy redis`` (or ``kvstore``) the candidate is ``twistd kvproxy`` in front of
a redis-server (or a kvstore), judged against expected-proxy-redis.txt (-kvstore.txt).

Exit status: 0 when no test expected to pass failed, 1 on a regression, 2 when the reference
redis-server run itself broke (the yardstick is not valid) or the tools are missing.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from tests.redis_suite import report
from tests.redis_suite.results import (
    compare, diff, merge_attempts, parse_expected, updated_expected)
from tests.redis_suite.source import SHARED, cache_dir, locate
from tests.redis_suite.runner import (
    DEFAULT_PROXY_ARGS, FILES, MODES, OWN, OWN_FILES, PROXIED_BACKENDS, Job, Ports, Runner,
    kvstore_args, pairs_to_run, prepare_suite, proxied, tool_check)

HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED = os.path.join(HERE, "expected.txt")
# The transparency runs' expected results, one file per backend behind kvproxy.
EXPECTED_PROXY = os.path.join(HERE, "expected-proxy-%s.txt")
# The files the CI runs through kvproxy (the whole list takes too long there).
PROXY_CI_FILES = ["unit/type/string", "unit/keyspace", "unit/expire", "unit/multi",
                  "unit/pubsub", "unit/tracking", "unit/type/list"]


def _names(text: str, known: list) -> list:
    names = [name if name.startswith("unit/") or name in known else "unit/" + name
             for name in text.replace(",", " ").split()]
    return names


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.redis_suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", help="test files to run, comma/space separated "
                        "(default: all %d)" % (len(FILES + OWN_FILES),))
    parser.add_argument("--modes", default=",".join(MODES),
                        help="singledb (--singledb), multidb (SELECT 9) against a server the "
                        "runner starts, and/or own: the files tagged external:skip (%s), whose "
                        "harness starts src/redis-server (kvstore through "
                        "tests/redis_suite/launcher.py); default all three"
                        % (", ".join(name[5:] for name in OWN_FILES),))
    parser.add_argument("--kvstore-args", default=None,
                        help="extra twistd kvstore arguments (default: --inline-replies resp, "
                        "dropped when this kvstore lacks that option)")
    parser.add_argument("--through-proxy", choices=PROXIED_BACKENDS, default=None,
                        help="run the files through twistd kvproxy in front of a redis-server "
                        "or a kvstore (external modes only), compared with redis-server "
                        "directly")
    parser.add_argument("--proxy-args", default=DEFAULT_PROXY_ARGS,
                        help="twistd kvproxy arguments besides --listen and --backend "
                        "(default: %s, which the suite's CONFIG SETs need)"
                        % (DEFAULT_PROXY_ARGS,))
    parser.add_argument("--proxy-ci", action="store_true",
                        help="with --through-proxy and no --files: the CI's subset (%s)"
                        % (", ".join(name[5:] for name in PROXY_CI_FILES),))
    parser.add_argument("--expected", default=None, help="expected-results file (default "
                        "expected.txt, or expected-proxy-BACKEND.txt with --through-proxy)")
    parser.add_argument("--update", action="store_true",
                        help="rewrite the expected file's lines of the files and modes run")
    parser.add_argument("--report", help="also write a markdown report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--suite", help="the Redis 7.0.15 source tree holding tests/ (default: "
                        "$KVTWIST_REDIS_TESTS, else %s, else %s)"
                        % (" or ".join(SHARED), cache_dir()))
    parser.add_argument("--download", action="store_true",
                        help="when no suite is found, download the release tarball into the "
                        "cache (SHA-256 checked)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--ports", default="16100-16199", help="loopback port range to use")
    parser.add_argument("--helper-timeout", type=int, default=60,
                        help="the helper's --timeout: seconds without progress")
    parser.add_argument("--file-timeout", type=float, default=600,
                        help="wall-clock seconds after which a file's run is killed")
    parser.add_argument("--retries", type=int, default=1,
                        help="rerun a file against a fresh kvstore this many times when it "
                        "shows regressions; a test passing on a retry is reported as flaky")
    args = parser.parse_args(argv)
    everything = FILES if args.through_proxy else FILES + OWN_FILES
    if args.files:
        args.files = _names(args.files, FILES + OWN_FILES)
    else:
        args.files = PROXY_CI_FILES if args.through_proxy and args.proxy_ci else everything
    args.modes = args.modes.replace(",", " ").split()
    for mode in args.modes:
        if mode not in MODES:
            parser.error("unknown mode %r (%s)" % (mode, ", ".join(MODES)))
    if args.through_proxy:  # kvproxy's backend is started by the runner, never the harness
        args.modes = [mode for mode in args.modes if mode != OWN]
    args.candidate = proxied(args.through_proxy)
    if args.expected is None:
        args.expected = (EXPECTED_PROXY % (args.through_proxy,) if args.through_proxy
                         else EXPECTED)
    args.pairs = pairs_to_run(args.files, args.modes)
    if not args.pairs:
        parser.error("none of these files runs in these modes (%s are own-mode files)"
                     % (", ".join(OWN_FILES),))
    low, _, high = args.ports.partition("-")
    args.ports = (int(low), int(high or low))
    return args


def _interrupt(signum, frame):
    raise KeyboardInterrupt("signal %d" % (signum,))


def run_jobs(runner: Runner, jobs: list, workers: int) -> dict:
    """Run jobs on ``workers`` threads; return {(server, mode, file): FileRun}. On an
    interrupt every server and helper is stopped by PID before the threads are waited for."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [(job, pool.submit(runner.run, job)) for job in jobs]
        return {(job.server, job.mode, job.file): future.result() for job, future in futures}
    except BaseException:
        runner.processes.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def measure(args, runner: Runner, expected) -> tuple:
    """Run every file in every mode on both servers, retry the files with regressions; return
    (outcomes, flaky keys, (mode, file) pairs whose reference run broke)."""
    pairs = args.pairs
    candidate = args.candidate
    jobs = [Job(server, file, mode) for mode, file in pairs for server in (candidate, "redis")]
    runs = run_jobs(runner, jobs, args.jobs)
    outcomes, flaky, broken = {}, [], []
    for mode, file in pairs:
        redis, kv = runs[("redis", mode, file)], runs[(candidate, mode, file)]
        if redis.aborted or not redis.finished:
            runner.log("BROKEN REFERENCE %s %s: redis-server run %s" % (mode, file,
                                                                      redis.aborted))
            broken.append((mode, file))
        outcomes[(mode, file)] = compare(redis, kv)
    retry = [pair for pair in pairs if diff(expected, outcomes[pair], {pair}).regressions]
    for attempt in range(2, args.retries + 2):
        if not retry:
            break
        runner.log("retrying %d file(s) with regressions against a fresh %s"
                   % (len(retry), candidate))
        again = run_jobs(runner, [Job(candidate, file, mode, attempt) for mode, file in retry],
                         args.jobs)
        for mode, file in retry:
            second = compare(runs[("redis", mode, file)], again[(candidate, mode, file)])
            outcomes[(mode, file)], newly = merge_attempts(outcomes[(mode, file)], second)
            flaky.extend(newly)
        retry = [pair for pair in retry if diff(expected, outcomes[pair], {pair}).regressions]
    return [o for pair in pairs for o in outcomes[pair]], flaky, broken


def main(argv=None) -> int:
    args = parse_args(argv)
    tool_check()
    source = locate(args.suite, args.download)
    signal.signal(signal.SIGTERM, _interrupt)
    expected = {}
    if os.path.exists(args.expected):
        with open(args.expected) as handle:
            expected = parse_expected(handle.read())
    elif not args.update:
        print("note: no expected file %s: nothing counts as a regression" % (args.expected,))
    notes = []
    extra = kvstore_args(args.kvstore_args, log=lambda text: (print(text), notes.append(text)))
    scratch = tempfile.mkdtemp(prefix="kvtwist-redis-suite-")
    started = time.monotonic()
    runner = None
    try:
        suite = prepare_suite(source, scratch)
        runner = Runner(suite, scratch, extra, Ports(*args.ports), args.helper_timeout,
                        args.file_timeout, log=lambda text: print(text, flush=True),
                        proxy_args=shlex.split(args.proxy_args))
        if args.through_proxy:
            print("through kvproxy %s in front of %s" % (args.proxy_args, args.through_proxy))
        print("kvstore args: %s; %d run(s) of %d file(s) in %s; %d at once; scratch %s" % (
            " ".join(extra) or "(none)", len(args.pairs), len(args.files),
            "+".join(args.modes), args.jobs, scratch), flush=True)
        outcomes, flaky, broken = measure(args, runner, expected)
    except KeyboardInterrupt:
        if runner is not None:
            runner.processes.stop_all()
        print("interrupted: every server and helper stopped", file=sys.stderr)
        return 130
    finally:
        if runner is not None:
            runner.processes.stop_all()
        if args.keep:
            print("scratch directory kept: %s" % (scratch,))
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - started
    ran = set(args.pairs) - set(broken)
    judged = [o for o in outcomes if (o.mode, o.file) in ran]
    result = diff(expected, judged, ran)
    print()
    print(report.table(outcomes))
    print("\n%d tests, %.0f s (%d at once)" % (len(outcomes), seconds, args.jobs))
    text = report.summary(result, flaky)
    if text:
        print(text)
    for mode, file in broken:
        print("BROKEN REFERENCE %s %s: not judged, not updated (see the log above)" % (mode,
                                                                                     file))
    if args.report:
        with open(args.report, "w") as handle:
            handle.write(report.markdown(outcomes, seconds, notes + flaky_notes(flaky)))
    if args.update:
        with open(args.expected, "w") as handle:
            handle.write(updated_expected(expected, judged, ran))
        print("updated %s" % (args.expected,))
    if broken:
        return 2
    if result.regressions and not args.update:
        print("%d regression(s)" % (len(result.regressions),))
        return 1
    return 0


def flaky_notes(flaky: list) -> list:
    return ["flaky (passed on a retry): %s %s: %s" % key for key in flaky]

