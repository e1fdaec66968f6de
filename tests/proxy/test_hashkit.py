"""Tests for kvtwist.proxy.hashkit: nutcracker's hash functions and distributions, checked
against known values and against a real nutcracker placing keys on real redis-servers."""

from __future__ import annotations

import os
import random
import shutil
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.proxy import hashkit
from kvtwist.proxy.hashkit import HASHES, Distribution, hashed_part
from tests.procs import free_port
from tests.redisref import (RawConnection, nutcracker_or_skip, start_nutcracker,
                             start_redis_or_skip)

# Keys with every byte class: plain, high bytes (signed chars in C), hash tags, lengths
# around the 4- and 12-byte blocks of murmur, hsieh and jenkins.
KEYS = ([b"key:%d" % i for i in range(60)] + [bytes([i, 200, 255 - i]) * (i % 7 + 1)
                                             for i in range(40)]
        + [b"{user%d}:name" % (i % 5) for i in range(10)] + [b"x" * n for n in range(1, 26)])


class KnownValueTests(SynchronousTestCase):
    """Each hash gives the published value of its algorithm where one exists."""

    def test_fnv1a_32(self) -> None:
        """FNV-1a 32 of "a" is 0xe40c292c (the FNV reference)."""
        self.assertEqual(hashkit.fnv1a_32(b"a"), 0xE40C292C)

    def test_fnv1_32(self) -> None:
        """FNV-1 32 of "a" is 0x050c5d7e (the FNV reference)."""
        self.assertEqual(hashkit.fnv1_32(b"a"), 0x050C5D7E)

    def test_crc32a_is_crc32(self) -> None:
        """crc32a is the standard CRC-32 (of "123456789": 0xcbf43926)."""
        self.assertEqual(hashkit.crc32a(b"123456789"), 0xCBF43926)

    def test_crc16_xmodem_low_bits(self) -> None:
        """crc16's low 16 bits are CRC16-XMODEM (of "123456789": 0x31c3)."""
        self.assertEqual(hashkit.crc16(b"123456789") & 0xFFFF, 0x31C3)

    def test_jenkins_lookup3(self) -> None:
        """jenkins of the empty key is lookup3's initial value 0xdeadbeef + 13."""
        self.assertEqual(hashkit.jenkins(b""), 0xDEADBEEF + 13)

    @settings(deadline=None)  # PyPy's first calls are slow while it warms up
    @given(st.binary(max_size=40))
    def test_every_hash_is_32_bits(self, key: bytes) -> None:
        """Every hash gives an unsigned 32-bit integer for any key."""
        for name, function in HASHES.items():
            self.assertTrue(0 <= function(key) <= 0xFFFFFFFF, name)

    @settings(deadline=None)
    @given(st.one_of(st.binary(max_size=80), st.text(alphabet=st.characters(
        max_codepoint=127), max_size=80).map(str.encode)))
    def test_fnv1a_64_matches_its_byte_loop(self, key: bytes) -> None:
        """fnv1a_64 (cut once at the end for short ASCII keys) equals nc_fnv.c's loop of
        signed bytes cut to 32 bits at every step, for any key."""
        value = 0x84222325
        for byte in key:
            value ^= byte | 0xFFFFFF00 if byte & 0x80 else byte
            value = (value * 0x1B3) & 0xFFFFFFFF
        self.assertEqual(hashkit.fnv1a_64(key), value)


class HashTagTests(SynchronousTestCase):
    """hashed_part follows server_pool_idx's rules."""

    def test_tags(self) -> None:
        """The text between the tag's characters is hashed; an empty or open tag is not."""
        self.assertEqual(hashed_part(b"{user1}:a", b"{}"), b"user1")
        self.assertEqual(hashed_part(b"a{}b", b"{}"), b"a{}b")
        self.assertEqual(hashed_part(b"a{bc", b"{}"), b"a{bc")
        self.assertEqual(hashed_part(b"x$ab$y$z$", b"$$"), b"ab")
        self.assertEqual(hashed_part(b"{user1}", b""), b"{user1}")


class DistributionTests(SynchronousTestCase):
    """Distribution places keys and moves them when servers are ejected."""

    servers = [("a:1", 1), ("b:2", 2), ("c:3", 1)]

    def test_bad_configuration(self) -> None:
        """Unknown hashes or distributions, bad tags and weights are refused."""
        self.assertRaises(ValueError, Distribution, self.servers, "nope")
        self.assertRaises(ValueError, Distribution, self.servers, "ketama", "sha1")
        self.assertRaises(ValueError, Distribution, self.servers, hash_tag=b"{")
        self.assertRaises(ValueError, Distribution, [("a", 0)])
        self.assertRaises(ValueError, Distribution, [("a", 1), ("a", 2)])

    def test_ejection_moves_only_the_ejected_keys(self) -> None:
        """With ketama and equal weights, ejecting a server moves its keys only, and they come
        back after (a server's points depend on its share of the live weight)."""
        pool = Distribution([(name, 1) for name, _ in self.servers])
        before = {key: pool.index(key) for key in KEYS}
        pool.update([0, 2])
        after = {key: pool.index(key) for key in KEYS}
        for key in KEYS:
            if before[key] != 1:
                self.assertEqual(after[key], before[key])
            else:
                self.assertIn(after[key], (0, 2))
        pool.update([0, 1, 2])
        self.assertEqual({key: pool.index(key) for key in KEYS}, before)

    def test_no_live_server(self) -> None:
        """With every server ejected there is no place for a key."""
        pool = Distribution(self.servers, "modula")
        pool.update([])
        self.assertIsNone(pool.index(b"k"))

    def test_random_uses_live_servers(self) -> None:
        """The random distribution picks among live servers only."""
        pool = Distribution(self.servers, "random", rng=random.Random(1))
        pool.update([2])
        self.assertEqual({pool.index(key) for key in KEYS}, {2})


class NutcrackerTests(SynchronousTestCase):
    """For every hash and both hashing distributions, each key lands where nutcracker puts it."""

    def setUp(self) -> None:
        nutcracker_or_skip()
        self.redis = [start_redis_or_skip() for _ in range(3)]
        for server in self.redis:
            self.addCleanup(server.stop)
        self.servers = [("127.0.0.1:%d" % self.redis[0].port, 1),
                        ("127.0.0.1:%d" % self.redis[1].port, 2),
                        ("shard-c", 1)]  # a named server: ketama hashes its name
        lines = []
        self.pools = {}
        for distribution in ("ketama", "modula"):
            for hash_name in sorted(HASHES):
                port = free_port()
                self.pools[(distribution, hash_name)] = port
                lines += ["%s_%s:" % (distribution, hash_name),
                          "  listen: 127.0.0.1:%d" % port,
                          "  hash: %s" % hash_name, "  distribution: %s" % distribution,
                          "  hash_tag: \"{}\"", "  redis: true", "  servers:",
                          "   - 127.0.0.1:%d:1" % self.redis[0].port,
                          "   - 127.0.0.1:%d:2" % self.redis[1].port,
                          "   - 127.0.0.1:%d:1 shard-c" % self.redis[2].port]
        workdir = tempfile.mkdtemp(prefix="kvtwist-nutcracker-")
        self.addCleanup(shutil.rmtree, workdir, True)
        config = os.path.join(workdir, "pools.yml")
        with open(config, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        self.addCleanup(start_nutcracker(config, self.pools.values(), workdir).stop)

    def placement(self, port: int) -> dict:
        """SET every key through one pool; return key -> index of the server holding it."""
        for server in self.redis:
            conn = RawConnection(server.port)
            conn.call([b"FLUSHALL"])
            conn.close()
        conn = RawConnection(port)
        for key in KEYS:
            self.assertEqual(conn.call([b"SET", key, b"v"]), b"+OK\r\n")
        conn.close()
        found = {}
        for index, server in enumerate(self.redis):
            conn = RawConnection(server.port)
            for key in KEYS:
                if conn.call([b"EXISTS", key]) == b":1\r\n":
                    found[key] = index
            conn.close()
        return found

    def test_same_placement_as_nutcracker(self) -> None:
        """Every (distribution, hash) pool places all the keys on nutcracker's servers (whose
        names sort in an order that depends on the ports: modula follows it)."""
        wrong = {}
        for (distribution, hash_name), port in sorted(self.pools.items()):
            pool = Distribution(self.servers, distribution, hash_name, hash_tag=b"{}")
            expected = self.placement(port)
            self.assertEqual(len(expected), len(set(KEYS)))
            misplaced = [key for key in KEYS if pool.index(key) != expected[key]]
            if misplaced:
                wrong[(distribution, hash_name)] = misplaced[:3]
        self.assertEqual(wrong, {})
