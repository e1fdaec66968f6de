"""BZPOPMIN, BZPOPMAX and BZMPOP (engine/t_zsetblock.py): served at once or blocked on the
generic blocking engine, woken by writes, timed out on a Clock, answered as Redis 7.0."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.blocking import Blocked
from kvtwist.engine.store import Store
from kvtwist.serve.factory import KVFactory
from kvtwist.wire.replies import NIL_ARRAY, Double, to_resp, to_resp3
from tests.helpers import SessionMixin
from tests.procs import start_kvstore
from tests.redisref import DifferentialMixin, start_redis_or_skip
from tests.serve.test_protocol import FakeJournal

try:
    import redis
except ImportError:  # pragma: no cover - redis-py is a test dependency
    redis = None


def _request(argv) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


def plain(reply):
    """A reply with its Doubles as their text (what RESP2 sends)."""
    if isinstance(reply, Double):
        return reply.text
    if isinstance(reply, list):
        return [plain(each) for each in reply]
    return reply


def _argv(line: str) -> list:
    return [b"" if word == "''" else word.encode() for word in line.split()]


class ZsetBlockingTests(SessionMixin, SynchronousTestCase):
    """The blocking sorted-set pops on a Store and a Clock (no sockets, no sleeps)."""

    def setUp(self):
        SessionMixin.setUp(self)
        self.other = self.store.new_session("127.0.0.1:5001")
        self.third = self.store.new_session("127.0.0.1:5002")

    def run_on(self, session, *args):
        reply = session.execute([a if isinstance(a, bytes) else a.encode() for a in args])
        return reply if isinstance(reply, Blocked) else plain(reply)

    def replies(self, blocked):
        self.assertIsInstance(blocked, Blocked)
        got = []
        blocked.add_callback(lambda b: got.append(plain(b.reply)))
        return got

    def test_serves_at_once(self):
        """With a non-empty sorted set among the keys, the first one is popped at once."""
        self.call("ZADD", "b", "1", "x", "2", "y", "3", "z")
        self.assertEqual(to_resp(self.call("BZPOPMIN", "a", "b", "0")),
                         b"*3\r\n$1\r\nb\r\n$1\r\nx\r\n$1\r\n1\r\n")
        self.assertEqual(to_resp(self.call("BZPOPMAX", "a", "b", "0")),
                         b"*3\r\n$1\r\nb\r\n$1\r\nz\r\n$1\r\n3\r\n")
        self.call("ZADD", "b", "1.5", "w")
        self.assertEqual(to_resp(self.call("BZMPOP", "0", "2", "a", "b", "MIN", "COUNT", "5")),
                         b"*2\r\n$1\r\nb\r\n*2\r\n*2\r\n$1\r\nw\r\n$3\r\n1.5\r\n"
                         b"*2\r\n$1\r\ny\r\n$1\r\n2\r\n")
        self.assertEqual(self.call("EXISTS", "b"), 0)
        self.assertIsNone(self.session.blocked)

    def test_resp3_shapes(self):
        """In RESP3 the scores are doubles; BZMPOP nests [member, score] pairs as ZMPOP."""
        self.session.protocol = 3
        self.call("ZADD", "k", "1", "a", "2.5", "b", "3", "c")
        self.assertEqual(to_resp3(self.call("BZPOPMIN", "k", "0")),
                         b"*3\r\n$1\r\nk\r\n$1\r\na\r\n,1\r\n")
        self.assertEqual(to_resp3(self.call("BZMPOP", "0", "1", "k", "MAX", "COUNT", "1")),
                         b"*2\r\n$1\r\nk\r\n*1\r\n*2\r\n$1\r\nc\r\n,3\r\n")
        got = []
        self.call("BZMPOP", "0", "1", "w", "MIN").add_callback(lambda b: got.append(b.reply))
        self.run_on(self.other, "ZADD", "w", "-inf", "m")
        self.assertEqual(to_resp3(got[0]), b"*2\r\n$1\r\nw\r\n*1\r\n*2\r\n$1\r\nm\r\n,-inf\r\n")

    def test_wrong_type_at_once(self):
        """The first existing key of another type answers WRONGTYPE, before any later zset."""
        self.call("SET", "s", "x")
        self.call("ZADD", "z", "1", "a")
        self.assertTrue(self.error("BZPOPMIN", "s", "z", "0").startswith("WRONGTYPE"))
        self.assertTrue(self.error("BZMPOP", "0", "2", "nope", "s", "MAX").startswith("WRONGTYPE"))
        self.assertEqual(self.run_on(self.session, "BZPOPMAX", "nope", "z", "s", "0"),
                         [b"z", b"a", b"1"])

    def test_zadd_wakes_the_blocked_client(self):
        """A ZADD to the awaited key serves the client with the minimum, journalled."""
        blocked = self.call("BZPOPMIN", "k", "0")
        got = self.replies(blocked)
        self.assertEqual(self.run_on(self.other, "ZADD", "k", "2", "b", "1", "a"), 2)
        self.assertEqual(got, [[b"k", b"a", b"1"]])
        self.assertGreater(blocked.seq, 0)
        self.assertEqual(self.run_on(self.other, "ZRANGE", "k", "0", "-1"), [b"b"])
        self.assertIsNone(self.session.blocked)
        self.assertEqual(self.store.blocking.count(), 0)

    def test_arrival_order(self):
        """Clients blocked on one key are served in the order they blocked, one member each."""
        first = self.replies(self.call("BZPOPMAX", "k", "0"))
        second = self.replies(self.run_on(self.other, "BZPOPMIN", "k", "0"))
        self.run_on(self.third, "ZADD", "k", "1", "a")
        self.assertEqual((first, second), ([[b"k", b"a", b"1"]], []))
        self.run_on(self.third, "ZADD", "k", "1", "b", "2", "c", "3", "d")
        self.assertEqual(second, [[b"k", b"b", b"1"]])
        self.assertEqual(self.run_on(self.third, "ZRANGE", "k", "0", "-1"), [b"c", b"d"])

    def test_bzmpop_multiple_clients(self):
        """Each woken BZMPOP takes up to its count, in arrival order, until the set is empty."""
        one = self.replies(self.call("BZMPOP", "0", "2", "z1", "z2", "MIN", "COUNT", "1"))
        many = self.replies(self.run_on(self.other, "BZMPOP", "0", "2", "z1", "z2", "MAX",
                                        "COUNT", "10"))
        last = self.replies(self.run_on(self.third, "BZMPOP", "0", "2", "z1", "z2", "MIN"))
        self.run_on(self.store.new_session(), "ZADD", "z2", "1", "a", "2", "b", "3", "c")
        self.assertEqual(one, [[b"z2", [[b"a", b"1"]]]])
        self.assertEqual(many, [[b"z2", [[b"c", b"3"], [b"b", b"2"]]]])
        self.assertEqual(last, [])
        self.run_on(self.other, "ZADD", "z1", "5", "e")
        self.assertEqual(last, [[b"z1", [[b"e", b"5"]]]])

    def test_store_commands_wake(self):
        """ZUNIONSTORE, ZRANGESTORE and ZINCRBY creating the key serve the blocked clients."""
        unions = self.replies(self.call("BZPOPMIN", "u", "0"))
        ranges = self.replies(self.run_on(self.other, "BZPOPMAX", "r", "0"))
        incr = self.replies(self.run_on(self.third, "BZMPOP", "0", "1", "i", "MAX"))
        feeder = self.store.new_session()
        self.run_on(feeder, "ZADD", "src", "1", "a", "2", "b")
        self.run_on(feeder, "ZUNIONSTORE", "u", "1", "src")
        self.run_on(feeder, "ZRANGESTORE", "r", "src", "0", "-1")
        self.run_on(feeder, "ZINCRBY", "i", "4", "m")
        self.assertEqual(unions, [[b"u", b"a", b"1"]])
        self.assertEqual(ranges, [[b"r", b"b", b"2"]])
        self.assertEqual(incr, [[b"i", [[b"m", b"4"]]]])

    def test_multi_exec_wakes_after_exec(self):
        """Writes inside MULTI serve the blocked client after EXEC, on the final state."""
        got = self.replies(self.call("BZPOPMIN", "k", "0"))
        self.run_on(self.other, "MULTI")
        self.run_on(self.other, "ZADD", "k", "1", "a")
        self.run_on(self.other, "DEL", "k")
        self.run_on(self.other, "EXEC")
        self.assertEqual(got, [])  # ZADD + DEL: nothing to serve
        self.run_on(self.other, "MULTI")
        self.run_on(self.other, "ZADD", "k", "1", "a", "2", "b")
        self.run_on(self.other, "ZPOPMIN", "k")
        self.assertEqual(got, [])
        self.assertEqual(self.run_on(self.other, "EXEC"), [2, [b"a", b"1"]])
        self.assertEqual(got, [[b"k", b"b", b"2"]])

    def test_inside_multi_answers_nil_at_once(self):
        """Inside MULTI the blocking pops never block: a null array, as a timeout."""
        self.call("MULTI")
        self.call("BZPOPMIN", "k", "0")
        self.call("BZPOPMAX", "k", "0")
        self.call("BZMPOP", "0", "1", "k", "MIN")
        self.assertEqual(self.call("EXEC"), [NIL_ARRAY, NIL_ARRAY, NIL_ARRAY])
        self.assertIsNone(self.session.blocked)

    def test_timeout(self):
        """A fractional timeout answers the null array once that much clock time passed."""
        got = self.replies(self.call("BZPOPMIN", "k", "0.25"))
        mpop = self.replies(self.run_on(self.other, "BZMPOP", "1.5", "1", "k", "MIN"))
        self.clock.advance(0.2)
        self.assertEqual(got, [])
        self.clock.advance(0.06)
        self.assertEqual(got, [NIL_ARRAY])
        self.clock.advance(1.3)
        self.assertEqual(mpop, [NIL_ARRAY])
        self.assertEqual(self.store.blocking.count(), 0)
        self.run_on(self.third, "ZADD", "k", "1", "a")
        self.assertEqual(self.run_on(self.third, "ZCARD", "k"), 1)

    def test_zero_blocks_forever(self):
        """Timeout 0 never expires."""
        got = self.replies(self.call("BZPOPMAX", "k", "0"))
        self.clock.advance(10 ** 7)
        self.assertEqual(got, [])
        self.run_on(self.other, "ZADD", "k", "7", "m")
        self.assertEqual(got, [[b"k", b"m", b"7"]])

    def test_timeout_errors(self):
        """Bad timeouts are refused with Redis's errors; BZMPOP checks numkeys first."""
        self.assertEqual(self.error("BZPOPMIN", "k", "x"),
                         "ERR timeout is not a float or out of range")
        self.assertEqual(self.error("BZPOPMAX", "k", "-1"), "ERR timeout is negative")
        self.assertEqual(self.error("BZMPOP", "x", "0", "k", "MIN"),
                         "ERR numkeys should be greater than 0")
        self.assertEqual(self.error("BZMPOP", "x", "1", "k", "MIN"),
                         "ERR timeout is not a float or out of range")

    def test_other_type_keeps_waiting(self):
        """A key that becomes a list or a string does not serve a zset waiter (Redis 7.0)."""
        got = self.replies(self.call("BZPOPMIN", "k", "0"))
        self.run_on(self.other, "LPUSH", "k", "x")
        self.run_on(self.other, "SET", "k", "v")
        self.assertEqual(got, [])
        self.assertIsNotNone(self.session.blocked)
        self.run_on(self.other, "DEL", "k")
        self.run_on(self.other, "ZADD", "k", "1", "z")
        self.assertEqual(got, [[b"k", b"z", b"1"]])

    def test_list_and_zset_waiters_on_one_key(self):
        """A list push serves the list waiter only; the zset waiter waits for a zset."""
        zset = self.replies(self.call("BZPOPMIN", "k", "0"))
        lst = self.replies(self.run_on(self.other, "BLPOP", "k", "0"))
        self.run_on(self.third, "RPUSH", "k", "x")
        self.assertEqual((zset, lst), ([], [[b"k", b"x"]]))
        self.run_on(self.third, "ZADD", "k", "1", "y")
        self.assertEqual(zset, [[b"k", b"y", b"1"]])

    def test_client_unblock(self):
        """CLIENT UNBLOCK answers the null array, or with ERROR the UNBLOCKED error."""
        got = self.replies(self.call("BZPOPMIN", "k", "0"))
        third = self.replies(self.run_on(self.third, "BZMPOP", "0", "1", "k", "MAX"))
        self.assertEqual(self.run_on(self.other, "CLIENT", "UNBLOCK", "%d" % self.session.id), 1)
        self.assertEqual(got, [NIL_ARRAY])
        self.assertEqual(self.run_on(self.other, "CLIENT", "UNBLOCK", "%d" % self.third.id,
                                     "ERROR"), 1)
        self.assertEqual(to_resp(third[0]),
                         b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")
        self.run_on(self.other, "ZADD", "k", "1", "a")
        self.assertEqual(self.run_on(self.other, "ZCARD", "k"), 1)

    def test_disconnect_loses_nothing(self):
        """A client gone while blocked is dropped; the next waiter gets the member."""
        self.call("BZPOPMIN", "k", "0")
        other = self.replies(self.run_on(self.other, "BZPOPMIN", "k", "0"))
        self.store.drop_session(self.session)
        self.run_on(self.third, "ZADD", "k", "1", "a")
        self.assertEqual(other, [[b"k", b"a", b"1"]])
        self.assertEqual(self.store.blocking.waiting, {})
        self.store.drop_session(self.other)
        self.run_on(self.third, "ZADD", "k", "2", "b")
        self.assertEqual(self.run_on(self.third, "ZRANGE", "k", "0", "-1"), [b"b"])

    def test_same_key_many_times_and_other_databases(self):
        """A key named twice is waited on once; a ZADD in another database does not wake."""
        got = self.replies(self.call("BZPOPMIN", "z1", "z2", "z2", "z1", "0"))
        self.run_on(self.other, "SELECT", "1")
        self.run_on(self.other, "ZADD", "z1", "1", "x")
        self.assertEqual(got, [])
        self.run_on(self.other, "SELECT", "0")
        self.run_on(self.other, "ZADD", "z2", "1", "a", "2", "b")
        self.assertEqual(got, [[b"z2", b"a", b"1"]])
        self.assertEqual(self.run_on(self.other, "ZCARD", "z2"), 1)

    def test_rename_and_swapdb_wake(self):
        """A sorted set renamed onto the key, or swapped in by SWAPDB, serves the waiter."""
        renamed = self.replies(self.call("BZPOPMIN", "k", "0"))
        self.run_on(self.other, "ZADD", "tmp", "1", "a")
        self.run_on(self.other, "RENAME", "tmp", "k")
        self.assertEqual(renamed, [[b"k", b"a", b"1"]])
        swapped = self.replies(self.call("BZPOPMAX", "k", "0"))
        self.run_on(self.other, "SELECT", "1")
        self.run_on(self.other, "ZADD", "k", "1", "m", "2", "n")
        self.assertEqual(swapped, [])
        self.run_on(self.other, "SWAPDB", "0", "1")
        self.assertEqual(swapped, [[b"k", b"n", b"2"]])
        self.assertEqual(self.call("ZRANGE", "k", "0", "-1"), [b"m"])

    def test_non_key_arguments_do_not_wake(self):
        """BZMPOP waits on its keys only, not on its timeout, numkeys, MIN or COUNT words."""
        got = self.replies(self.call("BZMPOP", "0", "1", "myzset", "MIN", "COUNT", "10"))
        for name in ("0", "1", "MIN", "min", "COUNT", "count", "10"):
            self.run_on(self.other, "ZADD", name, "1", "x")
        self.assertEqual(got, [])
        self.run_on(self.other, "ZADD", "myzset", "1", "zset")
        self.assertEqual(got, [[b"myzset", [[b"zset", b"1"]]]])

    def test_rollback_of_the_served_pop(self):
        """Undoing a woken client's pop puts the member back with its score."""
        keyspace = self.store.keyspace
        self.call("BZPOPMIN", "k", "0")
        keyspace.track_undo()
        self.run_on(self.other, "ZADD", "k", "1.5", "a", "3", "b")
        keyspace.settle(1)  # the ZADD is durable; the pop is not
        self.assertEqual(self.run_on(self.other, "ZCARD", "k"), 1)
        keyspace.rollback()
        self.assertEqual(self.run_on(self.other, "ZRANGE", "k", "0", "-1", "WITHSCORES"),
                         [b"a", b"1.5", b"b", b"3"])

    def test_keyspace_events_of_the_woken_pop(self):
        """The woken pop publishes zpopmin/zpopmax and, emptying the key, del (as Redis)."""
        script = [
            (0, [b"PSUBSCRIBE", b"__key*__:*"], False),
            (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"], False),
            (2, [b"BZPOPMIN", b"k", b"0"], True),
            (1, [b"ZADD", b"k", b"1", b"a", b"2", b"b"], [2]),
            (2, [b"BZMPOP", b"0", b"1", b"k", b"MAX", b"COUNT", b"5"], False),
            (2, [b"BZPOPMAX", b"k", b"0"], True),
            (1, [b"ZADD", b"k", b"1", b"a"], [2]),
            (1, [b"CONFIG", b"SET", b"notify-keyspace-events", b""], False),
        ]
        self.assertEqual(_kvstore_scenario(script), _redis_scenario_or_skip(self, script))


def _follow(blocked: set, multi: set, index, argv, effect) -> None:
    # Which connections may be sent the barrier PING after this step: not the blocked
    # ones, nor those inside MULTI (they would queue it; EXEC's barrier reads it all).
    if effect is True:
        blocked.add(index)
    elif effect:
        blocked.difference_update(effect)
    if index != "advance":
        name = argv[0].upper()
        if name == b"MULTI":
            multi.add(index)
        elif name in (b"EXEC", b"DISCARD"):
            multi.discard(index)


def _kvstore_scenario(script, protocol_versions=()) -> list:
    """Run a multi-connection script through kvstore's real front end: each step is
    ``(conn, argv, blocks)`` where ``blocks`` is True for a command that blocks, else the
    connections it wakes (or False); after each step every connection neither blocked nor
    inside MULTI is sent ``PING <BARRIER>``; return what each connection got, per step."""
    store = Store(Clock())
    factory = KVFactory(store)
    pairs = []
    for _ in range(3):
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        pairs.append((protocol, transport))
    blocked, multi = set(), set()
    out = []
    for step, (index, argv, effect) in enumerate(script):
        if index == "advance":
            store.clock.advance(argv)
        else:
            pairs[index][0].dataReceived(_request(argv))
        _follow(blocked, multi, index, argv, effect)
        store.clock.advance(0)
        for number, (protocol, transport) in enumerate(pairs):
            if number in blocked or number in multi:
                continue
            protocol.dataReceived(_request([b"PING", b"sync-barrier"]))
            store.clock.advance(0)
            data = transport.value()
            transport.clear()
            if step not in protocol_versions:
                out.append((step, number, data))
    return out


def _redis_scenario_or_skip(test, script, protocol_versions=()) -> list:
    """Run the same script against a throwaway redis-server (timeouts in real time)."""
    server = start_redis_or_skip()
    test.addCleanup(server.stop)
    end = b"$12\r\nsync-barrier\r\n"
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(3)]
    for sock in socks:
        test.addCleanup(sock.close)
    blocked, multi = set(), set()
    out = []
    for step, (index, argv, effect) in enumerate(script):
        if index != "advance":
            socks[index].sendall(_request(argv))
        _follow(blocked, multi, index, argv, effect)
        for number, sock in enumerate(socks):
            if number in blocked or number in multi:
                continue
            sock.sendall(_request([b"PING", b"sync-barrier"]))
            data = b""
            while not data.endswith(end):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("redis-server closed the connection")
                data += chunk
            if step not in protocol_versions:
                out.append((step, number, data))
    return out


# Edge cases run on both servers in order (none of them blocks).
SCRIPT = [
    "BZPOPMIN", "BZPOPMIN k", "BZPOPMAX k", "BZMPOP", "BZMPOP 0 1", "BZMPOP 0 1 k",
    "BZPOPMIN k x", "BZPOPMIN k ''", "BZPOPMIN k -1", "BZPOPMIN k inf", "BZPOPMIN k nan",
    "BZPOPMIN k 1e400", "BZPOPMAX k 1e30", "BZPOPMAX k -inf", "BZPOPMIN k 1_0",
    "BZMPOP x 1 k MIN", "BZMPOP -1 1 k MIN", "BZMPOP 0 0 k MIN", "BZMPOP 0 x k MIN",
    "BZMPOP 0 -1 k MAX", "BZMPOP 0 2 k MIN", "BZMPOP 0 1 k middle", "BZMPOP 0 1 k MIN bar",
    "BZMPOP 0 1 k MAX MIN", "BZMPOP 0 1 k COUNT", "BZMPOP 0 1 k MIN COUNT 1 COUNT 2",
    "BZMPOP 0 2 k k2 bad", "BZMPOP 0 1 k MIN COUNT 0", "BZMPOP 0 1 k MAX COUNT a",
    "BZMPOP 0 1 k MIN COUNT -1", "BZMPOP 0 1 k MIN COUNT", "BZMPOP x 0 k MIN COUNT 0",
    "BZMPOP x 1 k MIN COUNT 0", "BZMPOP 0 9223372036854775807 k MIN",
    "ZADD z 1 a 2 b 3 c -1.5 d 1e300 e 4 h 5 i", "BZPOPMIN z 0", "BZPOPMAX z 0",
    "BZPOPMIN nope z 0", "BZPOPMAX nope z 0.5", "BZMPOP 0 2 nope z MIN",
    "BZMPOP 0 2 nope z MAX COUNT 1", "ZADD z 0.1 f 5 g", "BZMPOP 0 1 z min count 2",
    "BZMPOP 0 1 z max count 100", "EXISTS z",
    "ZADD z 1 a", "BZPOPMIN z z z 0", "EXISTS z",
    "SET s str", "RPUSH l x", "ZADD z 1 a", "BZPOPMIN s z 0", "BZPOPMAX l z 0",
    "BZMPOP 0 2 nope s MIN", "BZMPOP 0 2 l z MAX COUNT 1", "BZMPOP 1 1 s min count 10",
    "BZPOPMIN z s 0", "BZPOPMIN s 0x10",
]


class DifferentialTests(DifferentialMixin, SynchronousTestCase):
    """The same commands give the same RESP bytes as redis-server."""

    def test_script_resp2(self):
        """Every case in SCRIPT answers as Redis 7.0 does under RESP2."""
        for line in SCRIPT:
            self.compare(_argv(line))

    def test_script_resp3(self):
        """Every case in SCRIPT answers as Redis 7.0 does under RESP3 (scores as doubles)."""
        self.redis.call([b"HELLO", b"3"])
        self.session.protocol = 3
        for line in SCRIPT:
            self.compare(_argv(line), resp3=True)


class ScenarioTests(SynchronousTestCase):
    """Blocked clients over several connections: the bytes each gets, as redis-server."""

    def compare(self, script, protocol_steps=()):
        theirs = _redis_scenario_or_skip(self, script, protocol_steps)
        ours = _kvstore_scenario(script, protocol_steps)
        for want, have in zip(theirs, ours):
            self.assertEqual(have, want, script[want[0]])
        self.assertEqual(len(ours), len(theirs))

    def test_wake_order_and_shapes_resp2(self):
        """Waiters are served in arrival order with RESP2 replies; others wait on."""
        self.compare([
            (0, [b"BZPOPMAX", b"k", b"0"], True),
            (1, [b"BZMPOP", b"0", b"2", b"j", b"k", b"MIN", b"COUNT", b"2"], True),
            (2, [b"ZADD", b"k", b"1", b"a", b"2", b"b", b"3", b"c", b"4", b"d"], [0, 1]),
            (0, [b"BZPOPMIN", b"j", b"0"], True),
            (2, [b"RPUSH", b"j", b"x"], False),
            (2, [b"DEL", b"j"], False),
            (2, [b"MULTI"], False),
            (2, [b"ZADD", b"j", b"5", b"e"], False),
            (2, [b"ZADD", b"j", b"6", b"f"], False),
            (2, [b"EXEC"], [0]),
            (1, [b"ZRANGE", b"k", b"0", b"-1", b"WITHSCORES"], False),
            (1, [b"ZRANGE", b"j", b"0", b"-1", b"WITHSCORES"], False),
        ])

    def test_wake_shapes_resp3(self):
        """Woken and timed-out replies in RESP3: doubles, nested pairs, the null."""
        self.compare([
            (0, [b"HELLO", b"3"], False),
            (1, [b"HELLO", b"3"], False),
            (0, [b"BZPOPMIN", b"k", b"0"], True),
            (1, [b"BZMPOP", b"0", b"1", b"k", b"MAX", b"COUNT", b"9"], True),
            (2, [b"ZADD", b"k", b"1.25", b"a", b"2", b"b", b"inf", b"c"], [0, 1]),
            (0, [b"BZPOPMIN", b"k", b"0.01"], True),
            ("advance", 0.02, [0]),
            (1, [b"BZMPOP", b"0.01", b"1", b"k", b"MIN"], True),
            ("advance", 0.02, [1]),
        ], protocol_steps=(0, 1))


class DurabilityTests(SynchronousTestCase):
    """A woken client's popped member is sent only once the pop's journal write is durable."""

    def setUp(self):
        self.clock = Clock()
        self.journal = FakeJournal()
        self.journal.failure = None
        self.store = Store(self.clock, self.journal)
        self.factory = KVFactory(self.store, max_bulk=1024)

    def connect(self):
        proto = self.factory.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport

    def test_reply_waits_for_the_pop_to_be_durable(self):
        """Nothing reaches the woken client until the journal acknowledges its pop."""
        waiter, waiter_out = self.connect()
        adder, adder_out = self.connect()
        waiter.dataReceived(_request([b"BZPOPMIN", b"q", b"0"]))
        adder.dataReceived(_request([b"ZADD", b"q", b"1", b"job"]))
        self.assertEqual((waiter_out.value(), adder_out.value()), (b"", b""))
        self.journal.commit()
        self.assertEqual(adder_out.value(), b":1\r\n")
        self.assertEqual(waiter_out.value(), b"*3\r\n$1\r\nq\r\n$3\r\njob\r\n$1\r\n1\r\n")

    def test_bzmpop_reply_waits_too(self):
        """BZMPOP's woken reply, too, waits for the acknowledgement."""
        waiter, waiter_out = self.connect()
        adder, _ = self.connect()
        waiter.dataReceived(_request([b"BZMPOP", b"0", b"1", b"q", b"MAX", b"COUNT", b"2"]))
        adder.dataReceived(_request([b"ZADD", b"q", b"1", b"a", b"2", b"b"]))
        self.assertEqual(waiter_out.value(), b"")
        self.journal.commit()
        self.assertEqual(waiter_out.value(),
                         b"*2\r\n$1\r\nq\r\n*2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n"
                         b"*2\r\n$1\r\na\r\n$1\r\n1\r\n")

    def test_failed_pop_is_an_error(self):
        """When the disk refuses the pop, the client gets an error, never the member."""
        waiter, waiter_out = self.connect()
        adder, _ = self.connect()
        adder.dataReceived(_request([b"ZADD", b"other", b"1", b"x"]))
        self.journal.commit()
        waiter.dataReceived(_request([b"BZPOPMIN", b"q", b"0"]))
        adder.dataReceived(_request([b"ZADD", b"q", b"1", b"job"]))
        self.journal.commit("disk full")
        self.assertTrue(waiter_out.value().startswith(b"-ERR persistence failed: disk full"))
        self.assertNotIn(b"job", waiter_out.value())


class ClientTests(SynchronousTestCase):
    """redis-py against a real ``twistd kvstore``: a blocked bzpopmin woken by another client."""

    def setUp(self):
        if redis is None:
            self.skipTest("redis-py is not installed")
        self.data = tempfile.mkdtemp(prefix="kvtwist-bzpop-")
        self.addCleanup(shutil.rmtree, self.data, True)
        self.server = start_kvstore(self.data)
        self.addCleanup(lambda: self.server.stop())  # the current one: tests restart it

    def client(self):
        client = redis.Redis(host="127.0.0.1", port=self.server.port)
        self.addCleanup(client.close)
        return client

    def wait_blocked(self, r, count):
        for _ in range(10000):
            if r.info("clients")["blocked_clients"] == count:
                return
        self.fail("never %d blocked clients" % (count,))

    def test_bzpopmin_woken_by_zadd(self):
        """bzpopmin with a timeout in one client returns the member another client adds;
        a pop that times out returns None; the popped member stays gone after a restart."""
        waiter, adder = self.client(), self.client()
        result = []
        thread = threading.Thread(target=lambda: result.append(waiter.bzpopmin("jobs", 30)))
        thread.start()
        try:
            self.wait_blocked(adder, 1)
            self.assertEqual(adder.zadd("jobs", {"j1": 2, "j0": 1}), 2)
        finally:
            thread.join(30)
        self.assertEqual(result, [(b"jobs", b"j0", 1.0)])
        self.assertIsNone(waiter.bzpopmax("empty", 0.05))
        self.assertEqual(waiter.bzmpop(1, 1, ["jobs"], max=True), [b"jobs", [[b"j1", b"2"]]])
        adder.zadd("jobs", {"j2": 3})
        self.server.stop()
        self.server = start_kvstore(self.data)
        r = self.client()
        self.assertEqual(r.zrange("jobs", 0, -1, withscores=True), [(b"j2", 3.0)])
