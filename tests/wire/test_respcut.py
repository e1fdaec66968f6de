"""Tests for kvtwist.wire.respcut: the request cutters of RequestParser.drain's fast path."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.wire.resp import RequestParser
from kvtwist.wire.respcut import find_requests, split_requests
from tests.wire.test_resp import _reference, _wire_fragments


class CutterTests(SynchronousTestCase):
    """Each cutter stops where a request is not whole and well formed."""

    @given(st.lists(_wire_fragments, max_size=12), st.integers(0, 40), st.integers(1, 8))
    def test_cutters_match_next_request(self, fragments, max_inline, max_args) -> None:
        """Each cutter (split and find; drain mixes them) cuts next_request()'s requests."""
        data = b"".join(fragments)
        limits = {"max_bulk": 8, "max_args": max_args, "max_inline": max_inline}
        requests, error = _reference(data, RequestParser(**limits))
        for cutter in (find_requests, split_requests):
            cut = []
            pos = cutter(data, cut, 8, max_args, max_inline)
            self.assertEqual(_reference(data[:pos], RequestParser(**limits)), (cut, None))
            rest, rest_error = _reference(data[pos:], RequestParser(**limits))
            self.assertEqual((cut + rest, rest_error), (requests, error))
