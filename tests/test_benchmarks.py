"""Tests for the pure parts of the benchmark harness (no servers, no timing)."""

from __future__ import annotations

import os
import shutil
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from benchmarks import __main__ as cli
from benchmarks import procs, redisbench, report, suites
from benchmarks.ceiling import CeilingFactory
from benchmarks.loadgen import (LineCounter, LoadProtocol, RespCounter, _Factory,
                                build_requests, latency_summary, parse_configs, percentile)

CSV7 = (
    '"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",'
    '"p99_latency_ms","max_latency_ms"\n'
    '"SET","74626.87","0.413","0.080","0.383","0.647","1.055","3.135"\n'
    '"GET","72992.70","0.361","0.104","0.351","0.471","0.943","1.423"\n'
    '"MSET (10 keys)","29027.58","1.516","0.272","1.327","2.823","5.255","7.695"\n')


class ParseCsvTests(SynchronousTestCase):
    """redis-benchmark --csv output parsing."""

    def test_redis7(self):
        """Each row gives ops/s and the p50/p99 latency columns, MSET under its short name."""
        found = redisbench.parse_csv(CSV7)
        self.assertEqual(sorted(found), ["GET", "MSET", "SET"])
        self.assertEqual(found["SET"], {"ops": 74626.87, "p50": 0.383, "p99": 1.055})
        self.assertEqual(found["MSET"]["p99"], 5.255)

    def test_warnings_ignored(self):
        """Non-CSV lines such as redis-benchmark's CONFIG warning are skipped."""
        found = redisbench.parse_csv("WARNING: Could not fetch server CONFIG\n" + CSV7)
        self.assertEqual(found["GET"]["ops"], 72992.70)

    def test_without_latency_columns(self):
        """Output without latency columns (older redis-benchmark) gives None latencies."""
        found = redisbench.parse_csv('"test","rps"\n"SET","1000.5"\n')
        self.assertEqual(found, {"SET": {"ops": 1000.5, "p50": None, "p99": None}})

    def test_no_header(self):
        """Output that is not redis-benchmark CSV raises BenchmarkError."""
        self.assertRaises(redisbench.BenchmarkError, redisbench.parse_csv,
                          "Could not connect to Redis at 127.0.0.1:1: Connection refused\n")

    def test_header_only(self):
        """A header with no result rows raises BenchmarkError."""
        self.assertRaises(redisbench.BenchmarkError, redisbench.parse_csv, CSV7.split("\n")[0])

    def test_bad_rps(self):
        """A row whose rps is not a number raises BenchmarkError."""
        self.assertRaises(redisbench.BenchmarkError, redisbench.parse_csv,
                          '"test","rps"\n"SET","fast"\n')

    def test_command_targets_loopback(self):
        """The redis-benchmark argv targets 127.0.0.1 with the requested -c, -P, -n, -r, -d."""
        argv = redisbench.command(6400, ("set", "get"), 50, 16, 1000, 100000, 32)
        self.assertEqual(argv[:5], ["redis-benchmark", "-h", "127.0.0.1", "-p", "6400"])
        joined = " ".join(argv)
        for part in ("-t set,get", "-c 50", "-P 16", "-n 1000", "-r 100000", "-d 32",
                     "--csv"):
            self.assertIn(part, joined)


    def test_lrange_short_names(self):
        """LRANGE rows are named LRANGE_<n> as the -t test; its LPUSH fill keeps its name."""
        found = redisbench.parse_csv(
            '"test","rps"\n"LPUSH (needed to benchmark LRANGE)","9"\n'
            '"LRANGE_100 (first 100 elements)","5"\n"LRANGE_600 (first 600 elements)","2"\n')
        self.assertEqual(sorted(found), ["LPUSH (needed to benchmark LRANGE)", "LRANGE_100",
                                         "LRANGE_600"])

    def test_command_logs_in(self):
        """auth arguments (-a, --user) go on redis-benchmark's command line."""
        argv = redisbench.command(6400, ("get",), 50, 1, 10, auth=("--user", "u", "-a", "p"))
        self.assertIn("--user u -a p", " ".join(argv))
        self.assertNotIn("-a", redisbench.command(6400, ("get",), 50, 1, 10))


class PercentileTests(SynchronousTestCase):
    """Nearest-rank percentiles of load-generator latencies."""

    def test_nearest_rank(self):
        """p50 and p99 of 1..100 are 50 and 99; p100 is the maximum, p0 the minimum."""
        ordered = list(range(1, 101))
        self.assertEqual(percentile(ordered, 50), 50)
        self.assertEqual(percentile(ordered, 99), 99)
        self.assertEqual(percentile(ordered, 100), 100)
        self.assertEqual(percentile(ordered, 0), 1)

    def test_small_sample(self):
        """With three samples p99 is the largest and p50 the middle one."""
        self.assertEqual(percentile([1, 2, 3], 99), 3)
        self.assertEqual(percentile([1, 2, 3], 50), 2)

    def test_empty_and_range(self):
        """No samples give None; a percentile outside 0..100 raises ValueError."""
        self.assertIsNone(percentile([], 50))
        self.assertRaises(ValueError, percentile, [1], 101)

    def test_summary_in_milliseconds(self):
        """latency_summary sorts seconds and reports p50/p99 in milliseconds."""
        self.assertEqual(latency_summary([0.003, 0.001, 0.002]), (2.0, 3.0))
        self.assertEqual(latency_summary([]), (None, None))

    @given(st.lists(st.floats(min_value=0, max_value=10), min_size=1))
    def test_percentile_is_a_sample_and_ordered(self, samples):
        """Every percentile is one of the samples, and p50 <= p99."""
        ordered = sorted(samples)
        p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
        self.assertIn(p50, samples)
        self.assertLessEqual(p50, p99)


_REPLIES = st.one_of(
    st.just(b"+OK\r\n"), st.just(b"$-1\r\n"), st.just(b"-ERR no\r\n"),
    st.integers(-5, 10 ** 9).map(lambda i: b":%d\r\n" % i),
    st.binary(max_size=40).map(lambda v: b"$%d\r\n%s\r\n" % (len(v), v)))


class RespCounterTests(SynchronousTestCase):
    """Counting RESP replies without parsing them."""

    STREAM = b"+OK\r\n$3\r\nabc\r\n$-1\r\n:12\r\n-ERR bad\r\n$4\r\na\r\nb\r\n"

    def test_whole(self):
        """A whole stream counts every reply, including a bulk holding CRLF, and its errors."""
        counter = RespCounter()
        self.assertEqual(counter.feed(self.STREAM), 6)
        self.assertEqual(counter.errors, 1)

    def test_byte_at_a_time(self):
        """Fed one byte at a time, each reply counts exactly when its last byte arrives."""
        counter = RespCounter()
        counts = [counter.feed(self.STREAM[i:i + 1]) for i in range(len(self.STREAM))]
        self.assertEqual(sum(counts), 6)
        self.assertEqual(counts[4], 1)  # the last byte of "+OK\r\n"
        self.assertEqual(counts[-1], 1)

    def test_trailing_bytes_wait(self):
        """An incomplete trailing reply is not counted until its remaining bytes arrive."""
        counter = RespCounter()
        self.assertEqual(counter.feed(b"+OK\r\n$5\r\nab"), 1)
        self.assertEqual(counter.feed(b"cde\r"), 0)
        self.assertEqual(counter.feed(b"\n"), 1)

    def test_array_rejected(self):
        """An array reply (never sent for SET/GET/MSET) raises ValueError."""
        self.assertRaises(ValueError, RespCounter().feed, b"*1\r\n+OK\r\n")

    @given(st.lists(_REPLIES, max_size=20), st.lists(st.integers(0, 400), max_size=6))
    @settings(max_examples=200)
    def test_any_split_counts_the_same(self, replies, cuts):
        """However the stream is split, the total count equals the number of replies."""
        stream = b"".join(replies)
        points = sorted(set(c % (len(stream) + 1) for c in cuts))
        counter = RespCounter()
        total = 0
        last = 0
        for point in points + [len(stream)]:
            total += counter.feed(stream[last:point])
            last = point
        self.assertEqual(total, len(replies))


class LineCounterTests(SynchronousTestCase):
    """Counting text and JSON replies."""

    def test_lines_and_errors(self):
        """Each newline is one reply; text and JSON error replies are counted as errors."""
        counter = LineCounter()
        self.assertEqual(counter.feed(b'OK\r\n"xx"\r\n(error) ERR x\r\n{"error":"y"}\n{"ok'), 4)
        self.assertEqual(counter.errors, 2)


class BuildRequestsTests(SynchronousTestCase):
    """Request encoding for each dialect."""

    def test_resp_round_trips_through_ceiling(self):
        """RESP SET requests are valid multibulk: the ceiling server answers each with +OK."""
        requests = build_requests("resp", "SET", 50)
        transport = StringTransport()
        proto = CeilingFactory().buildProtocol(None)
        proto.makeConnection(transport)
        proto.dataReceived(b"".join(requests))
        self.assertEqual(transport.value(), b"+OK\r\n" * 50)

    def test_text_and_json(self):
        """Text requests are one CRLF line; JSON requests are one object line with type/key."""
        text = build_requests("text", "SET", 1, value_size=3)[0]
        self.assertRegex(text, rb"^SET key:\d{12} xxx\r\n$")
        line = build_requests("json", "GET", 1)[0]
        self.assertRegex(line, rb'^\{"type":"GET","key":"key:\d{12}"\}\n$')

    def test_mset_has_ten_pairs(self):
        """MSET requests carry ten key/value pairs, like redis-benchmark's."""
        text = build_requests("text", "MSET", 1)[0]
        self.assertEqual(len(text.split()), 21)

    def test_unsupported(self):
        """JSON MSET and unknown dialects raise ValueError."""
        self.assertRaises(ValueError, build_requests, "json", "MSET", 1)
        self.assertRaises(ValueError, build_requests, "xml", "GET", 1)


class LoadProtocolTests(SynchronousTestCase):
    """The closed-loop sender with a fake clock."""

    def test_batches_and_latency(self):
        """It sends a batch of -P requests, records each reply's latency, then sends more."""
        now = [10.0]
        proto = LoadProtocol([b"a", b"b", b"c"], 2, RespCounter(), lambda: now[0])
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.start()
        self.assertEqual(transport.value(), b"ab")
        transport.clear()
        now[0] = 10.5
        proto.dataReceived(b"+OK\r\n")
        self.assertEqual(transport.value(), b"")
        now[0] = 11.0
        proto.dataReceived(b"+OK\r\n")
        self.assertEqual(transport.value(), b"ca")
        self.assertEqual(list(proto.samples), [0.5, 1.0])
        self.assertEqual(proto.completed, 2)

    def test_stop_and_reset(self):
        """After stop() replies send nothing more; reset() forgets the warm-up figures."""
        proto = LoadProtocol([b"a"], 1, LineCounter(), lambda: 1.0)
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.start()
        proto.dataReceived(b"OK\n")
        proto.reset()
        self.assertEqual((proto.completed, len(proto.samples)), (0, 0))
        proto.stop()
        transport.clear()
        proto.dataReceived(b"OK\n")
        self.assertEqual(transport.value(), b"")


    def test_failed_connection(self):
        """A refused connection fails the protocol's connected Deferred with the reason."""
        proto = LoadProtocol([b"a"], 1, LineCounter(), lambda: 1.0)
        d = proto.connected_d
        _Factory(proto).clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        self.failureResultOf(d, ConnectionRefusedError)

    def test_parse_configs(self):
        """CONNSxPIPELINE lists parse in order; junk and zero values raise ValueError."""
        self.assertEqual(parse_configs("50x1,50x16,1x1"), [(50, 1), (50, 16), (1, 1)])
        self.assertEqual(parse_configs("8"), [(8, 1)])
        for junk in ("x", "0x1", "5x0", "ax2"):
            self.assertRaises(ValueError, parse_configs, junk)


class CeilingTests(SynchronousTestCase):
    """The minimal Twisted RESP server."""

    def connect(self):
        transport = StringTransport()
        proto = CeilingFactory().buildProtocol(None)
        proto.makeConnection(transport)
        return proto, transport

    REQUESTS = (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nxy\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                b"*2\r\n$3\r\nGET\r\n$1\r\nz\r\n*1\r\n$4\r\nping\r\n*1\r\n$4\r\nINCR\r\n")
    REPLIES = (b"+OK\r\n$5\r\nv\r\nxy\r\n$-1\r\n+PONG\r\n"
               b"-ERR unknown command for the ceiling server\r\n")

    def test_whole(self):
        """SET, GET of a set and an unset key, PING and an unknown command, all in one read."""
        proto, transport = self.connect()
        proto.dataReceived(self.REQUESTS)
        self.assertEqual(transport.value(), self.REPLIES)

    def test_byte_at_a_time(self):
        """Fed one byte at a time, the replies are the same and nothing answers early."""
        proto, transport = self.connect()
        for i in range(len(self.REQUESTS) - 1):
            proto.dataReceived(self.REQUESTS[i:i + 1])
        self.assertFalse(transport.value().endswith(b"server\r\n"))
        proto.dataReceived(self.REQUESTS[-1:])
        self.assertEqual(transport.value(), self.REPLIES)

    def test_trailing_bytes_wait(self):
        """A partial request after complete ones stays buffered until it completes."""
        proto, transport = self.connect()
        proto.dataReceived(b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r")
        self.assertEqual(transport.value(), b"+PONG\r\n")
        proto.dataReceived(b"\nk\r\n")
        self.assertEqual(transport.value(), b"+PONG\r\n$-1\r\n")

    def test_not_multibulk(self):
        """Inline input gets a protocol error and the connection is closed."""
        proto, transport = self.connect()
        proto.dataReceived(b"PING\r\n")
        self.assertIn(b"-ERR Protocol error", transport.value())
        self.assertTrue(transport.disconnecting)

    def test_bad_length(self):
        """A non-numeric or negative length gets a protocol error, not a crash."""
        for junk in (b"*x\r\n", b"*-3\r\n"):
            proto, transport = self.connect()
            proto.dataReceived(junk)
            self.assertEqual(transport.value(), b"-ERR Protocol error: bad length\r\n")
            self.assertTrue(transport.disconnecting)

    @given(st.lists(st.tuples(st.binary(min_size=1, max_size=8), st.binary(max_size=30)),
                    max_size=10), st.lists(st.integers(0, 500), max_size=8))
    @settings(max_examples=100)
    def test_any_split_same_replies(self, pairs, cuts):
        """SET then GET of random pairs gives identical replies however the bytes are split."""
        stream = b"".join(
            b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n"
            % (len(k), k, len(v), v, len(k), k) for k, v in pairs)
        expected = b"".join(b"+OK\r\n$%d\r\n%s\r\n" % (len(v), v) for _, v in pairs)
        proto, transport = self.connect()
        last = 0
        for point in sorted(set(c % (len(stream) + 1) for c in cuts)) + [len(stream)]:
            proto.dataReceived(stream[last:point])
            last = point
        self.assertEqual(transport.value(), expected)


def _row(server, value, group="g", test="SET", unit="ops/s"):
    return report.Row(group, server, test, value, unit, 50, 1)


class RoundSummaryTests(SynchronousTestCase):
    """round_summary reduces interleaved rounds to a median and a per-round ratio range."""

    def row(self, ops: float) -> dict:
        return {"ops": ops, "p50": ops / 1000, "p99": ops / 100}

    def test_median_and_ratio_range(self) -> None:
        """The median of the rounds, the round at the median, and each round's ratio."""
        base = [self.row(100.0), self.row(200.0), self.row(100.0)]
        ops, middle, count, low, high = suites.round_summary(
            [self.row(50.0), self.row(60.0), self.row(70.0)], base)
        self.assertEqual((ops, middle, count), (60.0, self.row(60.0), 3))
        self.assertEqual((low, high), (0.3, 0.7))

    def test_missing_rounds(self) -> None:
        """A round without a figure on either side is left out of the ratios."""
        base = [self.row(100.0), None, self.row(100.0)]
        ops, middle, count, low, high = suites.round_summary(
            [None, self.row(80.0), self.row(40.0)], base)
        self.assertEqual((ops, count, low, high), (60.0, 2, 0.4, 0.4))
        self.assertEqual(middle, self.row(80.0))
        self.assertIsNone(suites.round_summary([None, None], base))
        self.assertEqual(suites.round_summary([self.row(1.0)], [None])[3:], (None, None))


class CpuPerRequestTests(SynchronousTestCase):
    """A server's CPU per request, from /proc readings around a benchmark round."""

    def test_stat_times_after_the_command_name(self) -> None:
        """User and system ticks are fields 14 and 15, counted after a name with ") " in it."""
        line = "42 (odd ) name) S 1 42 42 0 -1 4194560 10 0 0 0 250 75 3 1 20 0 2 0 9 1 1"
        self.assertEqual(procs.parse_stat_times(line, 100), (2.5, 0.75))

    def test_own_process(self) -> None:
        """cpu_seconds reads this very process, and nothing for a process that is gone."""
        found = procs.cpu_seconds(os.getpid())
        self.assertIn(os.getpid(), found)
        self.assertEqual(len(found[os.getpid()]), 2)
        self.assertEqual(procs.cpu_seconds(2 ** 22 + 1), {})

    def test_per_request_and_children(self) -> None:
        """Microseconds per request: the server's user and system, its children's together."""
        before = {7: (1.0, 0.5), 8: (0.25, 0.25)}
        after = {7: (3.0, 1.5), 8: (0.75, 0.25), 9: (0.5, 0.0)}
        self.assertEqual(suites.cpu_per_request(before, after, 7, 100000),
                         (20.0, 10.0, 10.0))
        self.assertIsNone(suites.cpu_per_request({}, after, 7, 100000))

    def test_note_gives_medians(self) -> None:
        """The note gives each part's median over the rounds, the writer only when there is one."""
        note = suites.cpu_note([(10.0, 4.0, 2.0), None, (12.0, 6.0, 4.0), (11.0, 5.0, 3.0)])
        self.assertEqual(note, "; CPU per SET 11.0 us user + 5.0 us sys, journal writer 3.0 us")
        self.assertEqual(suites.cpu_note([(3.0, 7.0, 0.0)]),
                         "; CPU per SET 3.0 us user + 7.0 us sys")
        self.assertEqual(suites.cpu_note([None]), "")


class InterleavedTests(SynchronousTestCase):
    """suites.interleaved measures servers in turn and reduces each to one row."""

    def test_rows_ratios_and_cpu(self) -> None:
        """A row per server: its median, its per-round ratio to the first, and its CPU."""
        class Server:
            auth = ()

            def __init__(self, port):
                self.port = self.pid = port

        rates = {1: iter([100.0, 200.0]), 2: iter([50.0])}  # the other's first round fails
        calls = []

        def bench(port, tests, conns, pipeline, n, timeout, keyspace, auth):
            calls.append((port, tests, conns, pipeline, n, keyspace))
            if port == 2 and len(calls) == 2:
                raise redisbench.BenchmarkError("lost")
            return {"GET": {"ops": next(rates[port]), "p50": 1.0, "p99": 2.0}}

        ticks = iter(range(100))
        self.patch(redisbench, "run", bench)
        self.patch(procs, "cpu_seconds", lambda pid: {pid: (next(ticks) / 10, 0.5)})
        run = suites.Run(tempfile.gettempdir(), True, ("proxy",), out=open(os.devnull, "w"))
        self.addCleanup(run.out.close)
        suites.interleaved(run, "g", [("ref", Server(1)), ("other", Server(2))], "get",
                               50, 16, 1000, keyspace=7, shown="GET hit", against="ref",
                               cpu=True)
        self.assertEqual([call[0] for call in calls], [1, 2, 1, 2])
        self.assertEqual(calls[0][1:], (("get",), 50, 16, 1000, 7))
        ref, other = run.rows
        self.assertEqual((ref.server, ref.test, ref.value, other.value),
                         ("ref", "GET hit", 150.0, 50.0))
        self.assertEqual(ref.note, "median of 2; CPU per GET 100.0 us user + 0.0 us sys")
        self.assertEqual(other.note, "median of 1; x ref per round 0.25-0.25; "
                                     "CPU per GET 100.0 us user + 0.0 us sys")


class ReportTests(SynchronousTestCase):
    """Ratios, the markdown table and the chart."""

    def test_ratio(self):
        """ratio divides, and gives None for a missing value or a zero/missing reference."""
        self.assertEqual(report.ratio(50.0, 200.0), 0.25)
        self.assertIsNone(report.ratio(None, 1.0))
        self.assertIsNone(report.ratio(1.0, 0.0))

    def test_ratios_match_group_test_and_config(self):
        """x ref uses the group's reference row with the same test/-c/-P; x ceiling the server's."""
        rows = [_row("redis", 100.0), _row("kv", 60.0), _row("ceil", 80.0),
                _row("kv", 10.0, test="GET"), _row("kv", 5.0, group="other")]
        out = report.ratios(rows, {"g": "redis"}, {"kv": "ceil"})
        self.assertEqual([(x, c) for _, x, c in out],
                         [(1.0, None), (0.6, 0.75), (0.8, None), (None, None), (None, None)])

    def test_markdown(self):
        """The table shows formatted figures, failures with their reason, and the footnotes."""
        rows = [_row("redis", 100.0), _row("kv", 50.0),
                report.Row("g", "kv", "GET", None, note="server | exited"),
                _row("redis", 80.0, group="mem", unit="bytes/key")]
        text = report.markdown(rows, {"g": "redis", "mem": "redis"}, {})
        self.assertIn("| g | kv | SET | 50 | 1 | 50 ops/s | – | – | 0.50 | – |", text)
        self.assertIn("failed (server / exited)", text)
        self.assertIn("80.0 B/key", text)
        self.assertIn("- **mem**: x ref = against redis", text)

    def test_grouped(self):
        """Rows of one group are kept together, in order of the group's first appearance."""
        rows = [_row("a", 1, group="x"), _row("a", 1, group="y"), _row("b", 2, group="x")]
        self.assertEqual([(r.group, r.server) for r in report.grouped(rows)],
                         [("x", "a"), ("x", "b"), ("y", "a")])

    def test_chart(self):
        """A PNG is written when a throughput row has a ratio, and nothing when none has."""
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise self.skipTest("matplotlib (the bench extra) is not installed")
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "c.png")
        self.assertFalse(report.chart([_row("kv", 1.0)], {"g": "redis"}, path, "t"))
        self.assertFalse(os.path.exists(path))
        self.assertTrue(report.chart([_row("redis", 2.0), _row("kv", 1.0)], {"g": "redis"},
                                     path, "t"))
        with open(path, "rb") as png:
            self.assertEqual(png.read(8), b"\x89PNG\r\n\x1a\n")


class ProcsTests(SynchronousTestCase):
    """Child-process command lines and the RESP helpers."""

    def test_everything_binds_loopback(self):
        """redis-server, kvstore and kvproxy command lines bind 127.0.0.1 only."""
        self.assertIn("127.0.0.1", procs.redis_argv(7000, "/tmp"))
        self.assertIn("tcp:7000:interface=127.0.0.1",
                      procs.kvstore_argv("py", 7000, "/d", "no", "/l"))
        argv = procs.kvproxy_argv("py", 7000, 7001, "/l")
        self.assertIn("tcp:127.0.0.1:7001", argv)

    def test_redis_persistence(self):
        """appendfsync None turns persistence off; a policy turns AOF on with that policy."""
        self.assertIn("no", procs.redis_argv(1, "/t")[procs.redis_argv(1, "/t").index(
            "--appendonly") + 1])
        argv = procs.redis_argv(1, "/t", "always")
        self.assertEqual(argv[argv.index("--appendfsync") + 1], "always")
        self.assertEqual(argv[argv.index("--appendonly") + 1], "yes")

    def test_nutcracker_config(self):
        """The twemproxy YAML names the listen port, redis: true and the one backend."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "n.yml")
        argv = procs.nutcracker_config(path, 7000, 7001)
        with open(path) as config:
            text = config.read()
        self.assertIn("listen: 127.0.0.1:7000", text)
        self.assertIn("redis: true", text)
        self.assertIn("- 127.0.0.1:7001:1", text)
        self.assertEqual(argv[1:3], ["-c", path])

    def test_pong_or_noauth(self):
        """wait_for_pong returns when a server with a password answers PING with -NOAUTH."""
        import socket
        import threading

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(64)
                conn.sendall(b"-NOAUTH Authentication required.\r\n")

        threading.Thread(target=serve, daemon=True).start()
        procs.wait_for_pong(listener.getsockname()[1], 10.0)

    def test_encode(self):
        """encode builds a RESP multibulk from str and bytes items."""
        self.assertEqual(procs.encode(("GET", b"k")), b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")


class CommandLineTests(SynchronousTestCase):
    """python -m benchmarks argument handling."""

    def test_defaults(self):
        """No options select every suite at full size."""
        args = cli.parse_args([])
        self.assertIsNone(args.suite)
        self.assertFalse(args.quick)

    def test_suites(self):
        """--suite is repeatable and rejects unknown suite names with a usage error."""
        self.assertEqual(cli.parse_args(["--suite", "core", "--suite", "fsync"]).suite,
                         ["core", "fsync"])
        self.assertRaises(SystemExit, cli.parse_args, ["--suite", "nope"])


class StealTests(SynchronousTestCase):
    """The header reports how much CPU time the hypervisor took while each suite ran."""

    def write_stat(self, line: str) -> str:
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "stat")
        with open(path, "w") as f:
            f.write(line + "\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
        return path

    def test_cpu_times_reads_steal_and_total(self):
        """cpu_times returns the steal column and the sum of the first eight of /proc/stat."""
        path = self.write_stat("cpu  100 0 50 800 10 0 5 35 0 0")
        self.assertEqual(cli.cpu_times(path), (35, 1000))
        self.assertIsNone(cli.cpu_times(path + ".missing"))

    def test_share_and_note(self):
        """The share is steal over total between two readings; the note names each suite."""
        share = cli.steal_share((35, 1000), (135, 1400))
        self.assertEqual(share, 0.25)
        self.assertIsNone(cli.steal_share(None, (1, 2)))
        note = cli.steal_note(cli._merge([("core", share), ("fsync", 0.1), ("fsync", 0.3),
                                          ("restart", None)]))
        self.assertIn("core 25 %, fsync 20 %.", note)
        self.assertNotIn("restart", note)
        self.assertEqual(cli.steal_note([("core", None)]), "")


class StallsTests(SynchronousTestCase):
    """The stalls suite's watching client and its workloads."""

    def test_watcher_records_each_ping(self) -> None:
        """The watcher PINGs a server until stopped and keeps one round trip per PONG."""
        import socket
        import threading

        from benchmarks import stalls

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                while conn.recv(64):
                    conn.sendall(b"+PONG\r\n")

        threading.Thread(target=serve, daemon=True).start()
        watcher = stalls.Watcher(listener.getsockname()[1])
        with watcher:
            while len(watcher.waits) < 3:
                threading.Event().wait(0.01)
        self.assertGreaterEqual(len(watcher.waits), 3)
        self.assertTrue(all(wait >= 0 for wait in watcher.waits))

    def test_quick_workloads_are_smaller(self) -> None:
        """--quick shrinks the large values; every workload names its size."""
        from benchmarks import stalls

        self.assertEqual([name for name, _, _, _ in stalls.workloads(True)],
                         ["SET 32 MB", "GET 32 MB", "APPEND 1 B to 16 MB x5",
                          "KEYS (*a)x40 b, 10 kB key", "SET 32 MB, GET watcher"])
        self.assertEqual([name for name, _, _, _ in stalls.workloads(False)],
                         ["SET 128 MB", "GET 128 MB", "APPEND 1 B to 64 MB x5",
                          "KEYS (*a)x40 b, 10 kB key", "SET 512 MB", "SET 512 MB, GET watcher"])

    def test_get_whole_reads_the_bulk_to_its_end(self) -> None:
        """_get_whole reads a bulk reply to its last byte however it is split, and refuses
        anything but a bulk string."""
        import socket
        import threading

        from benchmarks import procs, stalls

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(2)
        self.addCleanup(listener.close)
        value = b"v" * 200000

        def serve() -> None:
            for reply in (b"$%d\r\n%s\r\n" % (len(value), value), b"-ERR no\r\n"):
                conn, _ = listener.accept()
                with conn:
                    conn.recv(64)
                    for start in range(0, len(reply), 7001):
                        conn.sendall(reply[start:start + 7001])
                    conn.recv(64)

        threading.Thread(target=serve, daemon=True).start()
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as sock:
            self.assertEqual(stalls._get_whole(sock, b"big"), len(value))
            sock.sendall(b"PING\r\n")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            self.assertRaises(procs.ServerError, stalls._get_whole, sock, b"big")

    def test_watcher_sends_its_request(self) -> None:
        """A GET watcher sends GET of a small key and takes the nil bulk as the answer."""
        import socket
        import threading

        from benchmarks import stalls

        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)
        seen = []

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                while True:
                    data = conn.recv(64)
                    if not data:
                        return
                    seen.append(data)
                    conn.sendall(b"$-1\r\n")

        threading.Thread(target=serve, daemon=True).start()
        watcher = stalls.Watcher(listener.getsockname()[1], stalls.GET_WATCH)
        with watcher:
            while len(watcher.waits) < 2:
                threading.Event().wait(0.01)
        self.assertEqual(seen[0], stalls.GET_WATCH[0])
