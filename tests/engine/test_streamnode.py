"""Tests for kvtwist.engine.streamnode: stream IDs and listpack element sizes."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import listpack
from kvtwist.engine.streamnode import Node, format_id, parse_id, str_size


class IdTests(SynchronousTestCase):
    """IDs are one int: ms << 64 | seq."""

    def test_round_trip(self):
        """format_id and parse_id are inverse, up to the 64-bit limits; junk is refused."""
        for text in (b"0-0", b"1-2", b"18446744073709551615-18446744073709551615"):
            self.assertEqual(format_id(parse_id(text)), text)
        for bad in (b"1", b"-1-0", b"1-x", b"18446744073709551616-0", b""):
            self.assertRaises(ValueError, parse_id, bad)

    def test_listpack_sizes(self):
        """str_size agrees with the listpack encoder on every kind of element."""
        for value in (b"", b"a", b"0", b"127", b"128", b"-4096", b"4095", b"40000", b"-8388608",
                      b"2147483647", b"9223372036854775807", b"007", b"x" * 63, b"x" * 64,
                      b"x" * 4095, b"x" * 4096, b"-", b"12a"):
            self.assertEqual(str_size(value), len(listpack.encode([value])) - 7, value)

    def test_new_node_bytes(self):
        """A new node's base is its listpack's bytes but the count and deleted elements."""
        node = Node(1, (b"field", b"7"))
        whole = listpack.encode([b"1", b"0", b"2", b"field", b"7", b"0"])
        self.assertEqual(node.base + 2 + 2, len(whole))
