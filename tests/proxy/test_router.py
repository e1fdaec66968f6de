"""Tests for kvtwist.proxy.router: routing by key over a pool, CROSSSLOT, ejection, INFO;
and, end to end, the same placement as a real nutcracker for 10,000 random keys."""

from __future__ import annotations

import os
import random
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy.store import BackendUnavailable
from kvtwist.wire.replies import OK, Error
from tests.procs import TwistdProcess, free_port
from tests.proxy.fakes import ShardedCase, result_of
from tests.redisref import (RawConnection, nutcracker_or_skip, start_nutcracker,
                             start_redis_or_skip)


class RoutingTests(ShardedCase):
    """Each command goes to the server of its keys."""

    def test_get_and_set_go_to_their_server(self) -> None:
        """GET and SET of a key reach its server only; the GET is cached after."""
        key = self.key_on(1)
        d = self.session.execute([b"SET", key, b"v"])
        self.assertEqual(self.backends[1].sent[0][0], [b"SET", key, b"v"])
        self.backends[1].answer(0, OK)
        self.assertEqual(result_of(d), OK)
        d = self.session.execute([b"GET", key])
        self.clock.advance(0)
        self.assertEqual(self.backends[1].sent[1][0], [b"GET", key])
        self.backends[1].answer(1, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertEqual(self.session.execute([b"GET", key]), b"v")
        self.assertEqual([len(backend.sent) for backend in self.backends], [0, 2, 0])

    def test_crossslot(self) -> None:
        """A multi-key command other than the split ones, over two servers, is refused with
        an error naming them; with a hash tag it goes to one server."""
        reply = self.session.execute([b"RENAME", self.key_on(0), self.key_on(2)])
        self.assertEqual(reply.message, "ERR CROSSSLOT keys of this command live on "
                                        "different servers (a:1, c:3): use a hash tag")
        self.session.execute([b"RENAME", b"{t}a", b"{t}b"])
        where = self.pool.distribution.index(b"t")
        self.assertEqual(self.backends[where].sent[0][0], [b"RENAME", b"{t}a", b"{t}b"])

    def test_movable_keys(self) -> None:
        """EVAL's declared keys route it; with none it goes to the first live server."""
        key = self.key_on(2)
        self.session.execute([b"EVAL", b"return 1", b"1", key])
        self.assertEqual(self.backends[2].sent[0][0][0], b"EVAL")
        self.session.execute([b"EVAL", b"return 1", b"0"])
        self.assertEqual(self.backends[0].sent[0][0][0], b"EVAL")

    def test_info_sections(self) -> None:
        """INFO has the pool's settings and a section per server."""
        info = self.session.execute([b"INFO"]).decode()
        self.assertIn("pool_servers:3\r\n", info)
        self.assertIn("# Server2\r\nserver2_name:c:3\r\nserver2_address:c:3\r\n", info)
        self.assertIn("server1_status:up\r\n", info)
        self.assertIn("# Cache\r\n", info)


class EjectionTests(ShardedCase):
    """server_failure_limit failures in a row eject a server when auto_eject_hosts is on."""

    pool_options = {"auto_eject_hosts": True, "server_retry_timeout": 30.0,
                    "server_failure_limit": 2}

    def test_ejected_and_readmitted(self) -> None:
        """After two failures the server's keys go to the others; after the retry timeout
        they come back."""
        key = self.key_on(1)
        self.assertEqual(self.proxy.shard_index(key), 1)  # remembered from now on
        shard = self.shards[1]
        shard.answered(OK)
        from twisted.python.failure import Failure
        shard.answered(Failure(BackendUnavailable("down")))
        self.assertFalse(shard.ejected)
        shard.answered(Failure(BackendUnavailable("down")))
        self.assertTrue(shard.ejected)
        self.assertNotEqual(self.pool.distribution.index(key), 1)
        self.assertNotEqual(self.proxy.shard_index(key), 1)
        info = self.session.execute([b"INFO"]).decode()
        self.assertIn("server1_status:ejected\r\n", info)
        self.assertIn("server1_ejections:1\r\n", info)
        self.assertIn("pool_live_servers:2\r\n", info)
        self.clock.advance(30)
        self.assertFalse(shard.ejected)
        self.assertEqual(self.proxy.shard_index(key), 1)

    def test_a_reply_resets_the_count(self) -> None:
        """Failures must be consecutive: a reply in between starts the count again."""
        from twisted.python.failure import Failure
        shard = self.shards[0]
        shard.answered(Failure(BackendUnavailable("down")))
        shard.answered(b"ok")
        shard.answered(Failure(BackendUnavailable("down")))
        self.assertFalse(shard.ejected)

    def test_no_live_server(self) -> None:
        """With every server ejected, a key's request fails at once saying so."""
        from twisted.python.failure import Failure
        for shard in self.shards:
            for _ in range(2):
                shard.answered(Failure(BackendUnavailable("down")))
        reply = self.session.execute([b"GET", b"k"])
        self.assertIsInstance(reply, Error)
        self.assertIn("no server available", reply.message)


class NoEjectionTests(ShardedCase):
    """Without auto_eject_hosts a failing server keeps its keys: they fail, fast."""

    def test_not_ejected(self) -> None:
        """Failures are counted but the server stays in the pool."""
        from twisted.python.failure import Failure
        shard = self.shards[0]
        for _ in range(5):
            shard.answered(Failure(BackendUnavailable("down")))
        self.assertFalse(shard.ejected)
        self.assertEqual(shard.errors, 5)


# (distribution, hash) pools checked end to end.
POOLS = [("ketama", "fnv1a_64"), ("ketama", "murmur"), ("modula", "md5"),
         ("modula", "crc32a")]


def random_keys(count: int, seed: int = 20) -> list:
    """``count`` distinct random keys, a third of them with hash tags."""
    rng = random.Random(seed)
    keys = set()
    while len(keys) < count:
        body = bytes(rng.randrange(33, 127) for _ in range(rng.randrange(1, 24)))
        if rng.random() < 0.33:
            body = b"{%d}%s" % (rng.randrange(200), body)
        keys.add(body)
    return sorted(keys)


class NutcrackerPlacementTests(SynchronousTestCase):
    """kvproxy with a pool file puts 10,000 random keys on the servers nutcracker does."""

    def setUp(self) -> None:
        nutcracker_or_skip()
        self.redis = [start_redis_or_skip() for _ in range(3)]
        for server in self.redis:
            self.addCleanup(server.stop)
        self.workdir = tempfile.mkdtemp(prefix="kvtwist-shard-")
        self.addCleanup(shutil.rmtree, self.workdir, True)

    def pool_text(self, name: str, port: int, distribution: str, hash_name: str) -> str:
        return "\n".join([
            "%s:" % (name,), "  listen: 127.0.0.1:%d" % (port,),
            "  hash: %s" % (hash_name,), "  distribution: %s" % (distribution,),
            "  hash_tag: \"{}\"", "  redis: true", "  servers:",
            "   - 127.0.0.1:%d:1" % self.redis[0].port,
            "   - 127.0.0.1:%d:2" % self.redis[1].port,
            "   - 127.0.0.1:%d:1 shard-c" % self.redis[2].port]) + "\n"

    def placement(self, port: int, keys: list) -> dict:
        """SET every key through the proxy at ``port``; key -> index of its server."""
        for server in self.redis:
            conn = RawConnection(server.port)
            conn.call([b"FLUSHALL"])
            conn.close()
        conn = RawConnection(port)
        request = b"".join(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(key), key)
                           for key in keys)
        conn.sock.sendall(request)
        expected = b"+OK\r\n" * len(keys)
        received = b""
        while len(received) < len(expected):
            chunk = conn.sock.recv(1 << 16)
            self.assertTrue(chunk, "proxy closed the connection")
            received += chunk
        self.assertEqual(received, expected)
        conn.close()
        found = {}
        for index, server in enumerate(self.redis):
            conn = RawConnection(server.port)
            reply = conn.call([b"KEYS", b"*"])
            conn.close()
            for key in parse_array(reply):
                found[key] = index
        self.assertEqual(len(found), len(keys))
        return found

    def test_same_servers_as_nutcracker(self) -> None:
        """For each (distribution, hash) every key lands on nutcracker's server."""
        keys = random_keys(10000)
        nutcracker_ports = {}
        lines = []
        proxies = {}
        for distribution, hash_name in POOLS:
            name = "%s_%s" % (distribution, hash_name)
            nutcracker_ports[name] = free_port()
            lines.append(self.pool_text(name, nutcracker_ports[name], distribution,
                                        hash_name))
            path = os.path.join(self.workdir, name + ".yml")
            with open(path, "w") as handle:
                handle.write(self.pool_text(name, 1, distribution, hash_name))
            proxies[name] = proxy = TwistdProcess(
                "kvproxy", ["--pool", path, "--listen", "tcp:0:interface=127.0.0.1",
                            "--no-tracking"])
            self.addCleanup(proxy.stop)
        config = os.path.join(self.workdir, "nutcracker.yml")
        with open(config, "w") as handle:
            handle.write("".join(lines))
        self.addCleanup(start_nutcracker(config, nutcracker_ports.values(), self.workdir).stop)
        wrong = {}
        for name, proxy in sorted(proxies.items()):
            through_kvproxy = self.placement(proxy.wait_for_ports(1)[0], keys)
            through_nutcracker = self.placement(nutcracker_ports[name], keys)
            misplaced = [key for key in keys
                         if through_kvproxy[key] != through_nutcracker[key]]
            if misplaced:
                wrong[name] = (len(misplaced), misplaced[:3])
            self.assertEqual(len(set(through_kvproxy.values())), 3, name)
        self.assertEqual(wrong, {})


def parse_array(reply: bytes) -> list:
    """The bulk strings of a RESP array reply (no nesting)."""
    head, _, rest = reply.partition(b"\r\n")
    assert head.startswith(b"*"), head
    items = []
    for _ in range(int(head[1:])):
        length_line, _, rest = rest.partition(b"\r\n")
        length = int(length_line[1:])
        items.append(rest[:length])
        rest = rest[length + 2:]
    return items
