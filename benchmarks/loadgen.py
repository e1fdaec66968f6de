"""Closed-loop Twisted load generator for the RESP, text and JSON dialects, with p50/p99."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from array import array

from twisted.internet import defer, protocol

DIALECTS = ("resp", "text", "json")
TESTS = ("SET", "GET", "MSET")
MSET_KEYS = 10


def percentile(ordered, pct: float):
    """Return the nearest-rank ``pct`` percentile of an ascending sequence, None if empty."""
    if not ordered:
        return None
    if not 0 <= pct <= 100:
        raise ValueError("percentile must be within 0..100: %r" % (pct,))
    rank = -(-len(ordered) * pct // 100)  # ceil without floats drifting
    return ordered[max(0, int(rank) - 1)]


def latency_summary(samples) -> tuple:
    """Return ``(p50_ms, p99_ms)`` of latencies in seconds; (None, None) without samples."""
    ordered = sorted(samples)
    p50, p99 = percentile(ordered, 50), percentile(ordered, 99)
    return (None if p50 is None else p50 * 1000.0, None if p99 is None else p99 * 1000.0)


class LineCounter:
    """Counts complete replies of line dialects (text and JSON: one line per reply here)."""

    def __init__(self):
        self.errors = 0

    def feed(self, data: bytes) -> int:
        """Return how many replies ``data`` completed; error lines are added to ``errors``."""
        self.errors += data.count(b"(error)") + data.count(b'{"error"')
        return data.count(b"\n")


class RespCounter:
    """Counts complete RESP2 replies without building them (simple, error, integer, bulk).

    Keeps only the unfinished tail of the stream, so cost is linear in bytes received.
    """

    def __init__(self):
        self.errors = 0
        self._tail = b""

    def feed(self, data: bytes) -> int:
        """Return how many replies ``data`` completed; raises ValueError on arrays or junk."""
        if self._tail:
            data = self._tail + data
        count = 0
        pos = 0
        size = len(data)
        find = data.find
        while pos < size:
            eol = find(b"\r\n", pos)
            if eol < 0:
                break
            kind = data[pos]
            if kind == 36:  # b"$"
                length = int(data[pos + 1:eol])
                end = eol + 2 if length < 0 else eol + 4 + length
                if end > size:
                    break
                pos = end
            elif kind in (43, 58):  # b"+", b":"
                pos = eol + 2
            elif kind == 45:  # b"-"
                self.errors += 1
                pos = eol + 2
            else:
                raise ValueError("unexpected RESP reply type %r" % (data[pos:pos + 1],))
            count += 1
        self._tail = data[pos:]
        return count


def _key(rng, keyspace: int) -> bytes:
    return b"key:%012d" % rng.randrange(keyspace)


def build_requests(dialect: str, test: str, count: int, keyspace: int = 100000,
                   value_size: int = 32, seed: int = 1) -> list:
    """Return ``count`` encoded requests (bytes) for one dialect and test, random keys
    drawn like redis-benchmark's ``-r`` (``key:%012d``); raises ValueError for
    unsupported combinations (JSON has no MSET shape in the contract)."""
    if dialect not in DIALECTS or test not in TESTS:
        raise ValueError("unknown dialect/test %r/%r" % (dialect, test))
    if dialect == "json" and test == "MSET":
        raise ValueError("the JSON dialect benchmark covers SET and GET only")
    rng = random.Random(seed)
    value = b"x" * value_size
    out = []
    for _ in range(count):
        if test == "SET":
            argv = [b"SET", _key(rng, keyspace), value]
        elif test == "GET":
            argv = [b"GET", _key(rng, keyspace)]
        else:
            argv = [b"MSET"]
            for _ in range(MSET_KEYS):
                argv += [_key(rng, keyspace), value]
        if dialect == "resp":
            out.append(b"*%d\r\n" % len(argv) + b"".join(
                b"$%d\r\n%s\r\n" % (len(a), a) for a in argv))
        elif dialect == "text":
            out.append(b" ".join(argv) + b"\r\n")
        else:
            obj = {"type": argv[0].decode(), "key": argv[1].decode()}
            if test == "SET":
                obj["value"] = argv[2].decode()
            out.append(json.dumps(obj, separators=(",", ":")).encode() + b"\n")
    return out


class LoadProtocol(protocol.Protocol):
    """Sends ``pipeline`` requests, waits for all their replies, repeats until stopped.

    Each reply's latency is measured from the moment its batch was written.
    """

    def __init__(self, requests: list, pipeline: int, counter, now, offset: int = 0):
        self.requests = requests
        self.pipeline = pipeline
        self.counter = counter
        self.now = now
        self.index = offset % len(requests)
        self.samples = array("d")
        self.completed = 0
        self.outstanding = 0
        self.sent_at = 0.0
        self.running = False
        self.connected_d = defer.Deferred()

    def connectionMade(self):
        d, self.connected_d = self.connected_d, None
        d.callback(self)

    def start(self):
        """Begin the send/receive loop."""
        self.running = True
        self._send()

    def reset(self):
        """Forget what was measured so far (the end of the warm-up)."""
        self.samples = array("d")
        self.completed = 0

    def stop(self):
        """Send nothing more; replies still in flight are not counted."""
        self.running = False

    def _send(self):
        requests = self.requests
        size = len(requests)
        start = self.index
        end = start + self.pipeline
        if end <= size:
            batch = requests[start:end]
        else:
            batch = requests[start:] + requests[:end - size]
        self.index = end % size
        self.outstanding = self.pipeline
        self.sent_at = self.now()
        self.transport.write(b"".join(batch))

    def dataReceived(self, data: bytes):
        done = self.counter.feed(data)
        if not done or not self.running:
            return
        latency = self.now() - self.sent_at
        self.samples.extend([latency] * done)
        self.completed += done
        self.outstanding -= done
        if self.outstanding <= 0:
            self._send()


class _Factory(protocol.ClientFactory):
    """Connects one LoadProtocol; a failed connection fails its ``connected_d``."""

    def __init__(self, proto: LoadProtocol):
        self.proto = proto

    def buildProtocol(self, addr):
        return self.proto

    def clientConnectionFailed(self, connector, reason):
        d, self.proto.connected_d = self.proto.connected_d, None
        if d is not None:
            d.errback(reason)


@defer.inlineCallbacks
def run(reactor, port: int, dialect: str, test: str, conns: int, pipeline: int,
        duration: float, replies: str = "", keyspace: int = 100000, value_size: int = 32,
        now=time.perf_counter, warmup: float = 0.0):
    """Drive 127.0.0.1:port for ``warmup`` then ``duration`` seconds, measuring only the
    latter (so a JIT, ours or the server's, is warm); the Deferred delivers a dict with
    ``ops`` (replies per second), ``p50``/``p99`` (ms), ``completed`` and ``errors``.

    ``replies`` is "resp" or "lines" (default: lines for text/JSON, resp for RESP).
    """
    replies = replies or ("resp" if dialect == "resp" else "lines")
    requests = build_requests(dialect, test, 4096, keyspace, value_size)
    protos = []
    waits = []
    for number in range(conns):
        counter = RespCounter() if replies == "resp" else LineCounter()
        proto = LoadProtocol(requests, pipeline, counter, now, offset=number * 977)
        waits.append(proto.connected_d)
        protos.append(proto)
        reactor.connectTCP("127.0.0.1", port, _Factory(proto), timeout=10)
    try:
        yield defer.gatherResults(waits, consumeErrors=True).addTimeout(15, reactor)
    except defer.FirstError as e:
        raise ConnectionError("cannot connect to 127.0.0.1:%d: %s" % (
            port, e.subFailure.getErrorMessage()))
    for proto in protos:
        proto.start()
    if warmup > 0:
        wait = defer.Deferred()
        reactor.callLater(warmup, wait.callback, None)
        yield wait
        for proto in protos:
            proto.reset()
    began = now()
    wait = defer.Deferred()
    reactor.callLater(duration, wait.callback, None)
    yield wait
    for proto in protos:
        proto.stop()
    elapsed = now() - began
    completed = sum(p.completed for p in protos)
    samples = array("d")
    for proto in protos:
        samples.extend(proto.samples)
        proto.transport.loseConnection()
    p50, p99 = latency_summary(samples)
    return {"ops": completed / elapsed if elapsed > 0 else 0.0, "p50": p50, "p99": p99,
            "completed": completed, "errors": sum(p.counter.errors for p in protos)}


def parse_configs(text: str) -> list:
    """Return ``[(conns, pipeline)]`` from ``"50x1,50x16,1x1"``; raises ValueError."""
    configs = []
    for part in text.split(","):
        conns, _, pipeline = part.partition("x")
        configs.append((int(conns), int(pipeline or 1)))
        if configs[-1][0] < 1 or configs[-1][1] < 1:
            raise ValueError("connections and pipeline depth must be >= 1: %r" % (part,))
    return configs


@defer.inlineCallbacks
def run_plan(reactor, args, emit):
    """Run every (-c, -P) x test of ``args`` in turn, passing each result dict (with
    ``test``, ``conns``, ``pipeline``, or ``error``) to ``emit``; one failure does not
    stop the rest."""
    for conns, pipeline in parse_configs(args.configs):
        for test in args.test.split(","):
            head = {"test": test, "conns": conns, "pipeline": pipeline}
            try:
                result = yield run(reactor, args.port, args.dialect, test, conns, pipeline,
                                   args.duration, args.replies, warmup=args.warmup)
            except Exception as e:
                result = {"error": "%s: %s" % (e.__class__.__name__, e)}
            head.update(result)
            emit(head)


def main(argv=None) -> int:
    """Run the planned loads, printing one JSON result line each; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dialect", choices=DIALECTS, default="resp")
    parser.add_argument("--test", default="SET", help="comma-separated: SET,GET,MSET")
    parser.add_argument("--configs", default="50x1", help="comma-separated CONNSxPIPELINE")
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--replies", choices=("resp", "lines"), default="")
    args = parser.parse_args(argv)
    try:
        parse_configs(args.configs)
        for test in args.test.split(","):
            build_requests(args.dialect, test, 1)
    except ValueError as e:
        parser.error(str(e))
    from twisted.internet import reactor

    def emit(result):
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()

    failure = []
    d = run_plan(reactor, args, emit)
    d.addErrback(failure.append)
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
