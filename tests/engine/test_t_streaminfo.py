"""Tests for kvtwist.engine.t_streaminfo: XINFO STREAM and XINFO HELP against a real
redis-server, byte for byte (the radix tree's node count included)."""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.t_streaminfo import rax_nodes
from tests.engine.test_t_stream import run_script
from tests.redisref import DifferentialMixin


class XinfoTests(DifferentialMixin, SynchronousTestCase):
    """XINFO's replies and errors match redis-server 7.0's."""

    def test_replies_and_errors(self):
        """HELP, STREAM with and without FULL/COUNT, wrong options, missing key, WRONGTYPE,
        the group subcommands refused, RESP3 maps."""
        script = [
            [b"xinfo", b"help"], [b"xinfo", b"help", b"x"], [b"xinfo", b"stream"],
            [b"xinfo", b"stream", b"none"], [b"xinfo", b"foo", b"k"], [b"xinfo"],
            [b"xadd", b"s", b"1-1", b"a", b"b"], [b"xadd", b"s", b"2-1", b"c", b"d", b"e", b"f"],
            [b"xinfo", b"stream", b"s"], [b"xinfo", b"stream", b"s", b"full"],
            [b"xinfo", b"stream", b"s", b"x"], [b"xinfo", b"stream", b"s", b"full", b"count"],
            [b"xinfo", b"stream", b"s", b"full", b"count", b"-1"],
            [b"xinfo", b"stream", b"s", b"FULL", b"COUNT", b"1"],
            [b"xinfo", b"stream", b"s", b"full", b"count", b"x"],
            [b"xinfo", b"stream", b"s", b"full", b"x", b"1"], [b"set", b"str", b"v"],
            [b"xinfo", b"stream", b"str"], [b"xdel", b"s", b"1-1", b"2-1"],
            [b"xinfo", b"stream", b"s"], [b"xinfo", b"stream", b"s", b"full"],
        ]
        run_script(self, script)
        self.redis.call([b"HELLO", b"3"])
        self.session.execute([b"HELLO", b"3"])
        run_script(self, [[b"xadd", b"t", b"1-1", b"a", b"b"], [b"xinfo", b"stream", b"t"],
                          [b"xinfo", b"stream", b"t", b"full"]], resp3=True)

    def test_radix_tree_counts(self):
        """radix-tree-keys and -nodes follow Redis's for streams of many nodes, after
        deletions and trims."""
        rng = random.Random(4)
        script = []
        ms = 1
        for n in range(2500):
            ms += rng.choice([1, 1, 7, 300, 70000, 1 << 33])
            script.append([b"xadd", b"s", b"%d-%d" % (ms, rng.randrange(300)), b"f", b"v"])
            if n % 400 == 399:
                script.append([b"xinfo", b"stream", b"s"])
        script += [[b"xtrim", b"s", b"maxlen", b"~", b"1000"], [b"xinfo", b"stream", b"s"]]
        run_script(self, script)

    def test_rax_nodes_shapes(self):
        """An empty tree is the root; one key a compressed node and its end."""
        self.assertEqual(rax_nodes([]), 1)
        self.assertEqual(rax_nodes([b"abcd"]), 2)
        self.assertEqual(rax_nodes([b"abcd", b"abce"]), 4)
