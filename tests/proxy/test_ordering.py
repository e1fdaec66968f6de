"""The proxy's ordering model, as property tests: kvtwist.proxy.store and reads against a model.

Every client's requests take effect in the order it made them, whatever batching, re-reading
and caching happen behind it: the replies of any run are explained by one order of all
requests that keeps each client's order and real time (``tests.proxy.linearizable``).
"""

from __future__ import annotations

import itertools
import socket

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.cache import Cache
from kvtwist.proxy.store import ProxyStore
from kvtwist.wire import respreply
from kvtwist.wire.replies import OK
from tests.procs import start_kvproxy
from tests.proxy.fakes import Databases, FakeListener, PipelineBackend
from tests.proxy.linearizable import NOT_INTEGER, OUT_OF_RANGE, Op, linearization
from tests.redisref import start_redis_or_skip

KEYS = (b"a", b"b")
VALUES = (b"1", b"10", b"x")

# Databases 0-2 (a few, so clients meet in them), one Redis refuses, one not an integer.
INDEXES = (b"0", b"1", b"2", b"16", b"x")

keys = st.sampled_from(KEYS)
reads = st.tuples(st.just(b"GET"), keys)  # drawn as often as all the rest: misses batch up
requests = st.one_of(
    reads,
    st.one_of(
        st.tuples(st.just(b"MGET"), keys, keys),
        st.tuples(st.just(b"SET"), keys, st.sampled_from(VALUES)),
        st.tuples(st.just(b"DEL"), keys),
        st.tuples(st.just(b"INCR"), keys),
        st.tuples(st.just(b"SELECT"), st.sampled_from(INDEXES))),
).map(list)
pipelines = st.lists(requests, min_size=1, max_size=5)


def visible(ops: list) -> None:
    """Set each op's ``returned`` to when its client saw it: replies leave in request order."""
    latest = {}
    for op in ops:  # in the order they were made: per client, its request order
        op.returned = max(op.returned, latest.get(op.client, 0))
        latest[op.client] = op.returned


def explain(ops: list) -> str:
    """The history, one request per line, for a failure message."""
    return "\n".join(repr(op) for op in ops)


class LinearizationTests(SynchronousTestCase):
    """The model check itself accepts what it should and refuses what it should."""

    def history(self, *rows) -> list:
        ops = []
        for client, argv, reply, called, returned in rows:
            op = Op(client, argv, called)
            op.reply, op.returned = reply, returned
            ops.append(op)
        return ops

    def test_acceptsConcurrentOrders(self) -> None:
        """Two clients' overlapping requests may take effect in either order."""
        ops = self.history((0, [b"SET", b"a", b"1"], OK, 1, 4),
                           (1, [b"GET", b"a"], None, 2, 3))
        self.assertIsNotNone(linearization(ops))

    def test_refusesAReadOfItsOwnLaterWrite(self) -> None:
        """A GET that sees a SET its client pipelined after it has no explanation (D2)."""
        ops = self.history((0, [b"GET", b"a"], b"new", 1, 5), (0, [b"GET", b"b"], None, 2, 5),
                           (0, [b"SET", b"a", b"new"], OK, 3, 5), (0, [b"GET", b"a"], b"new", 4, 5))
        self.assertIsNone(linearization(ops))

    def test_refusesAStaleReadAfterAnAnsweredWrite(self) -> None:
        """A GET made after another client's SET was answered must see it."""
        ops = self.history((0, [b"SET", b"a", b"1"], OK, 1, 2), (1, [b"GET", b"a"], None, 3, 4))
        self.assertIsNone(linearization(ops))

    def test_incrModel(self) -> None:
        """INCR counts from 0 and refuses a value that is not a canonical integer."""
        ops = self.history((0, [b"INCR", b"n"], 1, 1, 2), (0, [b"SET", b"n", b"x"], OK, 3, 4),
                           (0, [b"INCR", b"n"], NOT_INTEGER, 5, 6))
        self.assertIsNotNone(linearization(ops))

    def test_selectModel(self) -> None:
        """A client's requests after its SELECT n answered OK run in database n; a refused
        SELECT leaves it where it was; other clients stay in theirs."""
        ops = self.history((0, [b"SET", b"a", b"0"], OK, 1, 2), (0, [b"SELECT", b"2"], OK, 3, 4),
                           (0, [b"GET", b"a"], None, 5, 6), (0, [b"SET", b"a", b"2"], OK, 7, 8),
                           (0, [b"SELECT", b"16"], OUT_OF_RANGE, 9, 10),
                           (0, [b"GET", b"a"], b"2", 11, 12), (1, [b"GET", b"a"], b"0", 13, 14))
        self.assertIsNotNone(linearization(ops))

    def test_refusesAValueFromAnotherDatabase(self) -> None:
        """A GET in database 1 that sees database 0's value has no explanation."""
        ops = self.history((0, [b"SET", b"a", b"0"], OK, 1, 2), (1, [b"SELECT", b"1"], OK, 3, 4),
                           (1, [b"GET", b"a"], b"0", 5, 6))
        self.assertIsNone(linearization(ops))


class Harness:
    """A ProxyStore over a PipelineBackend (a Store) with several sessions, on a Clock."""

    def __init__(self, clients: int, strings_only: bool) -> None:
        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, miss_ttl=5)
        self.backend = PipelineBackend(Databases(self.clock))
        self.backend.strings_only = strings_only
        self.listener = FakeListener()
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, self.listener)
        self.sessions = [self.proxy.new_session() for _ in range(clients)]
        self.now = itertools.count(1)
        self.ops = []

    def send(self, client: int, pipeline: list) -> None:
        """One read from a client: its pipeline, executed in order."""
        execute = self.sessions[client % len(self.sessions)].execute
        for argv in pipeline:
            op = Op(client % len(self.sessions), argv, next(self.now))
            self.ops.append(op)
            reply = execute(list(argv))
            if isinstance(reply, Deferred):
                reply.addBoth(self._answered, op)
            else:
                self._answered(reply, op)

    def _answered(self, reply, op: Op) -> None:
        op.reply = reply
        op.returned = next(self.now)

    def act(self, action) -> None:
        """Apply one step: a client's pipeline, the end of a turn, some backend replies,
        an invalidation message, or the invalidation link going down or up."""
        kind = action[0]
        if kind == "send":
            self.send(action[1], action[2])
        elif kind == "turn":
            self.clock.advance(0)
        elif kind == "deliver":
            self.backend.deliver(action[1])
        elif kind == "invalidate":
            self.cache.invalidate(action[1])
        else:  # "link": the listener drops and flushes, or comes back and flushes
            self.cache.invalidate_all()
            self.listener.caching = action[1]

    def finish(self) -> list:
        """Run until every request is answered; return the history."""
        while True:
            self.clock.advance(0)
            if not self.backend.deliver():
                break
        self.cache.stop()
        return self.ops


sends = st.tuples(st.just("send"), st.integers(0, 2), pipelines)
actions = st.lists(st.one_of(
    sends,
    sends,
    st.tuples(st.just("turn")),
    st.tuples(st.just("deliver"), st.integers(1, 4)),
    st.tuples(st.just("invalidate"), keys),
    st.tuples(st.just("link"), st.booleans()),
), max_size=14)


class ModelTests(SynchronousTestCase):
    """Random pipelines from several clients through the proxy, checked against the model."""

    @settings(max_examples=1000, deadline=None)
    @given(st.integers(1, 3), st.booleans(), actions)
    @example(1, False, [("send", 0, [[b"GET", b"a"], [b"GET", b"b"], [b"SET", b"a", b"1"]])])
    @example(2, False, [("send", 0, [[b"MGET", b"a", b"b"]]),
                        ("send", 1, [[b"GET", b"a"], [b"SET", b"a", b"1"]])])
    @example(2, False, [("send", 0, [[b"SET", b"a", b"1"], [b"SELECT", b"1"], [b"GET", b"a"],
                                     [b"SET", b"a", b"x"]]),
                        ("send", 1, [[b"GET", b"a"], [b"SELECT", b"1"], [b"GET", b"a"]]),
                        ("turn",), ("deliver", 2),
                        ("send", 0, [[b"SELECT", b"0"], [b"GET", b"a"]])])
    def test_everyRunIsLinearizable(self, clients, strings_only, steps) -> None:
        """Whatever the interleaving of pipelines, turn ends and replies, every client's
        replies are explained by one order that keeps its own request order."""
        harness = Harness(clients, strings_only)
        for step in steps:
            harness.act(step)
        ops = harness.finish()
        unanswered = [op for op in ops if op.returned is None]
        self.assertEqual(unanswered, [])
        visible(ops)
        self.assertIsNotNone(linearization(ops), "no order explains:\n" + explain(ops))


def exchange(port: int, pipelines: list) -> list:
    """Send every client's pipeline on its own connection, then read each one's replies."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in pipelines]
    try:
        for sock, pipeline in zip(socks, pipelines):
            sock.sendall(b"".join(respreply.encode_command(argv) for argv in pipeline))
        answers = []
        for sock, pipeline in zip(socks, pipelines):
            parser = respreply.ReplyParser()
            replies = []
            while len(replies) < len(pipeline):
                data = sock.recv(65536)
                if not data:
                    raise AssertionError("kvproxy closed the connection")
                parser.feed(data)
                reply = parser.next_reply()
                while reply is not respreply.NEED_MORE:
                    replies.append(reply)
                    reply = parser.next_reply()
            answers.append(replies)
        return answers
    finally:
        for sock in socks:
            sock.close()


class RedisBackendTests(SynchronousTestCase):
    """The same property through a real ``twistd kvproxy`` in front of redis-server."""

    def test_everyRunIsLinearizable(self) -> None:
        """Rounds of concurrent pipelines from three clients: each round's replies are
        explained by one order keeping every client's requests in order."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        proxy = start_kvproxy(server.port, "--timeout", "10")
        self.addCleanup(proxy.stop)
        proxy.wait_for_line("invalidation tracking on")
        examples = itertools.count()

        @settings(max_examples=40, deadline=None)
        @given(st.lists(st.lists(pipelines, min_size=3, max_size=3), min_size=1, max_size=3))
        @example([[[[b"GET", b"a"], [b"GET", b"b"], [b"SET", b"a", b"1"], [b"GET", b"a"]],
                   [[b"GET", b"b"]], [[b"INCR", b"b"]]]])
        @example([[[[b"SET", b"a", b"0"], [b"SELECT", b"1"], [b"GET", b"a"]],
                   [[b"SELECT", b"1"], [b"SET", b"a", b"1"], [b"GET", b"a"]],
                   [[b"GET", b"a"], [b"SELECT", b"16"], [b"GET", b"a"]]]])
        def check(rounds) -> None:
            prefix = b"p%d:" % next(examples)  # each example starts from missing keys
            now = itertools.count(1)
            ops = []
            for round_index, round_ in enumerate(rounds):
                named = [[[argv[0]] + [prefix + arg if arg in KEYS else arg for arg in argv[1:]]
                          for argv in pipeline] for pipeline in round_]
                called = next(now)
                answers = exchange(proxy.port, named)
                returned = next(now)
                for client, (pipeline, replies) in enumerate(zip(round_, answers)):
                    for argv, reply in zip(pipeline, replies):
                        # Each round's connections are new: each starts in database 0.
                        op = Op(round_index * len(round_) + client, argv, called)
                        op.reply, op.returned = reply, returned
                        ops.append(op)
            self.assertIsNotNone(linearization(ops), "no order explains:\n" + explain(ops))

        check()


class ShardedHarness(Harness):
    """A ShardedStore over two PipelineBackends (servers s0, s1; modula places a and c on
    s0, b on s1), each a Store of its own, with several sessions, on a Clock."""

    def __init__(self, clients: int, strings_only: bool) -> None:
        from kvtwist.proxy.pool import Pool, Server
        from kvtwist.proxy.router import ShardedStore
        from kvtwist.proxy.shards import Shard

        self.clock = Clock()
        self.cache = Cache(self.clock, ttl=60, miss_ttl=5)
        servers = [Server("h", 1, 1, "s0"), Server("h", 2, 1, "s1")]
        self.pool = Pool(servers, distribution="modula")
        self.backends = [PipelineBackend(Databases(self.clock)) for _ in servers]
        self.listeners = [FakeListener() for _ in servers]
        shards = []
        for index, (backend, listener) in enumerate(zip(self.backends, self.listeners)):
            backend.strings_only = strings_only
            shards.append(Shard(self.clock, self.cache, backend, listener, servers[index],
                                index))
        self.proxy = ShardedStore(self.clock, self.cache, self.pool, shards)
        self.sessions = [self.proxy.new_session() for _ in range(clients)]
        self.now = itertools.count(1)
        self.ops = []

    def act(self, action) -> None:
        kind = action[0]
        if kind == "deliver":
            for backend in self.backends:
                backend.deliver(action[1])
        elif kind == "link":
            self.cache.invalidate_all()
            for listener in self.listeners:
                listener.caching = action[1]
        else:
            Harness.act(self, action)

    def finish(self) -> list:
        while True:
            self.clock.advance(0)
            if not sum(backend.deliver() for backend in self.backends):
                break
        self.cache.stop()
        return self.ops


sharded_keys = st.sampled_from((b"a", b"b", b"c"))
sharded_requests = st.one_of(
    st.tuples(st.just(b"GET"), sharded_keys),
    st.one_of(
        st.tuples(st.just(b"MGET"), sharded_keys, sharded_keys),
        st.tuples(st.just(b"SET"), sharded_keys, st.sampled_from(VALUES)),
        st.tuples(st.just(b"DEL"), sharded_keys),
        st.tuples(st.just(b"INCR"), sharded_keys),
        st.tuples(st.just(b"SELECT"), st.sampled_from(INDEXES))),
).map(list)
sharded_sends = st.tuples(st.just("send"), st.integers(0, 2),
                          st.lists(sharded_requests, min_size=1, max_size=5))
sharded_actions = st.lists(st.one_of(
    sharded_sends,
    sharded_sends,
    st.tuples(st.just("turn")),
    st.tuples(st.just("deliver"), st.integers(1, 4)),
    st.tuples(st.just("invalidate"), sharded_keys),
    st.tuples(st.just("link"), st.booleans()),
), max_size=14)


class ShardedModelTests(SynchronousTestCase):
    """The same model through a pool of two servers (proxy.router): every key on one
    server, SELECT on both, MGET split and merged."""

    @settings(max_examples=500, deadline=None)
    @given(st.integers(1, 3), st.booleans(), sharded_actions)
    @example(2, False, [("send", 0, [[b"MGET", b"a", b"b"], [b"SET", b"b", b"1"]]),
                        ("send", 1, [[b"SELECT", b"1"], [b"GET", b"b"], [b"SET", b"a", b"x"]]),
                        ("turn",), ("deliver", 1)])
    def test_everyRunIsLinearizable(self, clients, strings_only, steps) -> None:
        """Whatever the interleaving over both servers, every client's replies are
        explained by one order that keeps its own request order."""
        harness = ShardedHarness(clients, strings_only)
        for step in steps:
            harness.act(step)
        ops = harness.finish()
        self.assertEqual([op for op in ops if op.returned is None], [])
        visible(ops)
        self.assertIsNotNone(linearization(ops), "no order explains:\n" + explain(ops))
