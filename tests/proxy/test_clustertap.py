"""Tests for kvtwist.proxy.clustertap: ``--cluster`` options, and ``twistd kvproxy
--cluster`` end to end in front of a real three-primary Redis Cluster (routing, split
commands, CROSSSLOT, MOVED and ASK during a slot's migration, invalidation across
primaries, and a reshard while a client reads and writes)."""

from __future__ import annotations

import random
import select
import subprocess

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy import tap as proxytap
from kvtwist.proxy.cluster import ClusterStore
from tests.procs import TwistdProcess
from tests.rediscluster import RedisCluster, key_slot
from tests.redisref import RawConnection
from tests.respparse import ReplyError, parse_reply


class OptionsTests(SynchronousTestCase):
    """--cluster's seeds and the options it does not go with."""

    def parse(self, *argv) -> proxytap.Options:
        options = proxytap.Options()
        options.parseOptions(list(argv))
        return options

    def test_seeds(self) -> None:
        """--cluster repeats; host:port and tcp: endpoints both name a seed."""
        options = self.parse("--cluster", "127.0.0.1:7000", "--cluster", "tcp:10.0.0.1:7001")
        self.assertEqual(options["cluster"], ["127.0.0.1:7000", "10.0.0.1:7001"])

    def test_refused(self) -> None:
        """--cluster with --backend, --pool, --serve-stale or --stats, or a seed that is
        not host:port, is a usage error."""
        for extra in (["--backend", "127.0.0.1:1"], ["--serve-stale", "3"],
                      ["--stats", "tcp:0"], ["--cluster", "unix:/tmp/x"],
                      ["--cluster", "127.0.0.1:1:2"], ["--cluster", "h:1 name"]):
            self.assertRaises(usage.UsageError, self.parse, "--cluster", "127.0.0.1:7000",
                              *extra)

    def test_make_service(self) -> None:
        """--cluster makes a ClusterStore whose links start with the cluster service."""
        top = proxytap.makeService(self.parse("--listen", "tcp:0", "--cluster", "h:7000"),
                                   MemoryReactorClock())
        self.assertIsInstance(top.store, ClusterStore)
        self.assertEqual(top.store.seeds, ["h:7000"])
        self.assertIn(top.store.service, list(top))


def call(conn, *argv):
    """One command on a RawConnection; its parsed reply."""
    return parse_reply(conn.call([arg if isinstance(arg, bytes) else str(arg).encode()
                                  for arg in argv]))


def pipeline(conn, commands: list) -> list:
    """Send ``commands`` in one write on a RawConnection; their parsed replies, in order."""
    request = []
    for argv in commands:
        request.append(b"*%d\r\n" % (len(argv),))
        for arg in argv:
            request.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    conn.sock.sendall(b"".join(request))
    replies = []
    while len(replies) < len(commands):
        end = conn._reply_end(0) if conn.buffer else None
        if end is None:
            chunk = conn.sock.recv(65536)
            if not chunk:
                raise ConnectionError("kvproxy closed the connection")
            conn.buffer += chunk
            continue
        replies.append(parse_reply(conn.buffer[:end]))
        conn.buffer = conn.buffer[end:]
    return replies


def _pause(seconds: float) -> None:
    select.select([], [], [], seconds)


class LiveCase(SynchronousTestCase):
    """A real cluster (made once per class) and a kvproxy --cluster in front of it."""

    proxy_args = ()

    @classmethod
    def setUpClass(cls) -> None:
        cls.cluster = RedisCluster()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.cluster.stop()

    def setUp(self) -> None:
        seed = self.cluster.nodes[0].port
        self.proxy = TwistdProcess("kvproxy", [
            "--listen", "tcp:0:interface=127.0.0.1", "--cluster", "127.0.0.1:%d" % (seed,),
            "--timeout", "10"] + list(self.proxy_args))
        self.addCleanup(self.proxy.stop)
        self.port = self.proxy.wait_for_ports(1)[0]
        self.conn = RawConnection(self.port)
        self.addCleanup(self.conn.close)
        for _ in range(200):
            if b"cluster_state:ok" in call(self.conn, "INFO"):
                return
            _pause(0.05)
        self.fail("kvproxy did not read the slot map:\n" + self.proxy.log)

    def direct(self, key: bytes):
        """GET ``key`` from the node that serves its slot, past kvproxy."""
        node = self.cluster.node_of(key)
        return parse_reply(node.call("GET", key))

    def info(self) -> dict:
        text = call(self.conn, "INFO").decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def eventually(self, check, what: str, attempts: int = 200) -> None:
        for _ in range(attempts):
            if check():
                return
            _pause(0.05)
        self.fail(what)


class RoutingLiveTests(LiveCase):
    """Keys, split commands and CROSSSLOT through kvproxy --cluster."""

    def test_many_keys(self) -> None:
        """300 keys written through kvproxy each live on the node serving their slot, and
        read back through it (twice: from the backend, then the cache)."""
        keys = [b"key:%d" % (number,) for number in range(300)]
        for key in keys:
            self.assertEqual(call(self.conn, "SET", key, b"v-" + key), b"OK")
        for key in keys:
            self.assertEqual(self.direct(key), b"v-" + key)
        for _ in range(2):
            for key in keys:
                self.assertEqual(call(self.conn, "GET", key), b"v-" + key)
        self.assertEqual(len(set(self.cluster.node_of(key).port for key in keys[:60])), 3)

    def test_split_commands(self) -> None:
        """MSET, MGET, EXISTS, TOUCH, DEL and UNLINK over keys of every node are split
        per slot and answered in the client's order."""
        keys = [b"m:%d" % (number,) for number in range(12)]
        pairs = []
        for key in keys:
            pairs += [key, key.upper()]
        self.assertEqual(call(self.conn, "MSET", *pairs), b"OK")
        for key in keys:
            self.assertEqual(self.direct(key), key.upper())
        self.assertEqual(call(self.conn, "MGET", *(keys + [b"nope"])),
                         [key.upper() for key in keys] + [None])
        self.assertEqual(call(self.conn, "EXISTS", *(keys + keys[:2] + [b"nope"])), 14)
        self.assertEqual(call(self.conn, "TOUCH", *keys), 12)
        self.assertEqual(call(self.conn, "DEL", *keys[:6]), 6)
        self.assertEqual(call(self.conn, "UNLINK", *keys), 6)
        self.assertEqual(call(self.conn, "MGET", *keys[:3]), [None, None, None])

    def test_crossslot(self) -> None:
        """Other multi-key commands over several slots get Redis's CROSSSLOT error; with
        one hash tag they run, as do transactions on one slot."""
        self.assertEqual(call(self.conn, "RENAME", "a", "b"),
                         ReplyError("CROSSSLOT Keys in request don't hash to the same slot"))
        call(self.conn, "SET", "{u1}a", "1")
        self.assertEqual(call(self.conn, "RENAME", "{u1}a", "{u1}b"), b"OK")
        self.assertEqual(call(self.conn, "GET", "{u1}b"), b"1")
        self.assertEqual(call(self.conn, "MULTI"), b"OK")
        self.assertEqual(call(self.conn, "INCR", "{u1}c"), b"QUEUED")
        self.assertEqual(call(self.conn, "INCR", "{u1}c"), b"QUEUED")
        self.assertEqual(call(self.conn, "EXEC"), [1, 2])
        call(self.conn, "MULTI")
        call(self.conn, "INCR", "a")
        call(self.conn, "INCR", "b")
        self.assertEqual(call(self.conn, "EXEC"),
                         ReplyError("CROSSSLOT Keys in request don't hash to the same slot"))

    def test_invalidation_across_primaries(self) -> None:
        """A key cached from each primary is dropped when written on that primary
        directly: kvproxy then reads the new value."""
        keys = {}
        for number in range(200):
            key = b"inv:%d" % (number,)
            keys.setdefault(self.cluster.node_of(key).port, key)
        self.assertEqual(len(keys), 3)
        for key in keys.values():
            call(self.conn, "SET", key, b"old")
            # The first GET's value is cached once its PTTL is in; the second may join
            # that PTTL, and is answered after it: the third is a hit.
            for _ in range(3):
                self.assertEqual(call(self.conn, "GET", key), b"old")
        hits = int(self.info()["cache_hits"])
        self.assertGreaterEqual(hits, 3)
        for key in keys.values():
            self.cluster.node_of(key).call("SET", key, b"new")
        for key in keys.values():
            self.eventually(lambda key=key: call(self.conn, "GET", key) == b"new",
                            "kvproxy kept serving the old value of %r" % (key,))


class MigrationLiveTests(LiveCase):
    """A slot migrated by hand (CLUSTER SETSLOT, MIGRATE): ASK while it moves, MOVED
    after."""

    def test_ask_then_moved(self) -> None:
        """Keys of a migrating slot are read and written through kvproxy wherever they
        are (ASK), and after the move (MOVED) with the map read again."""
        source = self.cluster.nodes[0]
        target = self.cluster.nodes[1]
        slot = None
        for number in range(100000):
            candidate = key_slot(b"%d" % (number,))
            if self.cluster.owner(candidate) is source:
                slot = candidate
                break
        tag = None
        for number in range(1000000):
            if key_slot(b"t%d" % (number,)) == slot:
                tag = b"t%d" % (number,)
                break
        keys = [b"{%s}:%d" % (tag, number) for number in range(6)]
        for key in keys:
            self.assertEqual(call(self.conn, "SET", key, b"before"), b"OK")
            self.assertEqual(call(self.conn, "GET", key), b"before")
        target.call("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        source.call("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        self.assertEqual(source.call("MIGRATE", "127.0.0.1", target.port, "", 0, 5000,
                                     "KEYS", *keys[:3]), b"+OK\r\n")
        for key in keys:  # half moved: ASK for those
            self.assertEqual(call(self.conn, "GET", key), b"before")
        self.assertEqual(call(self.conn, "SET", keys[0], b"during"), b"OK")
        self.assertEqual(parse_reply(target.call("ASKING")), b"OK")
        self.assertEqual(call(self.conn, "GET", keys[0]), b"during")
        self.assertEqual(call(self.conn, "SET", keys[4], b"during"), b"OK")  # not moved
        info = self.info()
        self.assertGreater(int(info["cluster_ask"]), 0)
        source.call("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys[3:])
        for node in self.cluster.nodes:
            node.call("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        for key, value in zip(keys, [b"during", b"before", b"before", b"before",
                                     b"during", b"before"]):
            self.assertEqual(call(self.conn, "GET", key), value)
            self.assertEqual(self.direct(key), value)
        self.assertEqual(call(self.conn, "SET", keys[5], b"after"), b"OK")
        self.assertEqual(parse_reply(target.call("GET", keys[5])), b"after")
        self.eventually(lambda: int(self.info()["cluster_moved"]) > 0, "no MOVED followed")
        self.eventually(lambda: int(self.info()["cluster_map_refreshes"]) > 1,
                        "the map was not read again")


class ReshardLiveTests(LiveCase):
    """``redis-cli --cluster reshard`` while a client reads and writes through kvproxy."""

    def test_reshard_under_load(self) -> None:
        """Moving 200 slots (30 keys each, migrated one key per MIGRATE) from one primary
        to another while a client keeps writing and reading keys of those slots (and of
        others), ten requests pipelined at a time, gives no error and no stale read: each
        read answers the last value written before it."""
        source, target = self.cluster.nodes[0], self.cluster.nodes[1]
        tags = {}
        number = 0
        while len(tags) < 200:  # a tag for each of slots 0-199, the ones to move
            slot = key_slot(b"%d" % (number,))
            if slot < 200:
                tags.setdefault(slot, b"%d" % (number,))
            number += 1
        keys = [b"{%s}:%d" % (tag, index) for tag in tags.values() for index in range(30)]
        keys += [b"other:%d" % (index,) for index in range(300)]
        last = {}
        for start in range(0, len(keys), 100):
            pairs = []
            for key in keys[start:start + 100]:
                pairs += [key, b"0"]
                last[key] = b"0"
            self.assertEqual(call(self.conn, "MSET", *pairs), b"OK")
        rng = random.Random(5)
        reshard = subprocess.Popen(self.cluster.reshard_command(source, target, 200, 1),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(lambda: reshard.poll() is None and reshard.kill())
        operations = 0
        errors = []
        stale = []
        while reshard.poll() is None and operations < 500000:
            batch = []  # ten requests pipelined, checked in order
            for _ in range(10):
                key = rng.choice(keys)
                if rng.random() < 0.4:
                    batch.append([b"SET", key, b"%d" % (operations + len(batch),)])
                else:
                    batch.append([b"GET", key])
            for argv, reply in zip(batch, pipeline(self.conn, batch)):
                if isinstance(reply, ReplyError) or (argv[0] == b"SET" and reply != b"OK"):
                    errors.append((argv, reply))
                elif argv[0] == b"SET":
                    last[argv[1]] = argv[2]
                elif reply != last[argv[1]]:
                    stale.append((argv[1], reply, last[argv[1]]))
            operations += len(batch)
        output = reshard.stdout.read().decode("utf-8", "replace")
        reshard.stdout.close()
        self.assertEqual(reshard.wait(), 0, output)
        self.assertEqual(errors, [])
        self.assertEqual(stale, [])
        self.assertGreater(operations, 100)
        self.assertTrue(all(self.cluster.owner(slot) is target for slot in (0, 100, 199)))
        for key in keys:
            self.assertEqual(call(self.conn, "GET", key), last[key])
            self.assertEqual(self.direct(key), last[key])
        info = self.info()
        self.assertGreater(int(info["cluster_moved"]), 0)
        self.assertGreater(int(info["cluster_ask"]), 0)
        self.assertEqual(info["cluster_slots_covered"], "16384")
