"""Tests for kvtwist.serve.streaming: a reply written a piece per reactor turn, paced."""

from __future__ import annotations

import zlib

from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.serve import streaming
from kvtwist.serve.streaming import ReplyStream
from kvtwist.storage import checksums


class ReplyStreamTests(SynchronousTestCase):
    """ReplyStream writes one piece per turn, pauses and resumes on demand, and stops for good."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.written = []
        self.done = []

    def stream(self, pieces, write=None) -> ReplyStream:
        return ReplyStream(iter(pieces), write or self.written.append,
                           lambda: self.done.append(True), self.clock.callLater)

    def turn(self) -> None:
        """Run the calls pending now, not the ones they schedule (one reactor turn)."""
        for call in list(self.clock.calls):
            self.clock.calls.remove(call)
            call.called = 1
            call.func(*call.args, **call.kw)

    def test_provides_push_producer(self) -> None:
        """It is an IPushProducer, as registerProducer(..., True) expects."""
        self.assertTrue(IPushProducer.providedBy(self.stream([])))

    def test_one_piece_per_turn(self) -> None:
        """Each turn writes one piece; the turn after the last calls done."""
        stream = self.stream([b"a", b"b"])
        stream.start()
        self.assertEqual(self.written, [])
        self.turn()
        self.assertEqual(self.written, [b"a"])
        self.turn()
        self.assertEqual(self.written, [b"a", b"b"])
        self.assertEqual(self.done, [])
        self.turn()
        self.assertEqual(self.done, [True])
        self.assertEqual(self.clock.calls, [])

    def test_empty_piece_takes_a_turn(self) -> None:
        """An empty piece writes nothing but still ends its turn."""
        stream = self.stream([b"", b"x"])
        stream.start()
        self.turn()
        self.assertEqual(self.written, [])
        self.turn()
        self.assertEqual(self.written, [b"x"])

    def test_pause_and_resume(self) -> None:
        """A paused stream schedules nothing until resumed, then goes on where it was."""
        stream = self.stream([b"a", b"b"])
        stream.start()
        stream.pauseProducing()
        self.assertEqual(self.clock.calls, [])
        stream.resumeProducing()
        stream.resumeProducing()
        self.assertEqual(len(self.clock.calls), 1)
        self.turn()
        self.assertEqual(self.written, [b"a"])

    def test_paused_by_its_own_write(self) -> None:
        """A write that fills the transport's buffer (which pauses it) schedules no next piece."""
        def write(piece: bytes) -> None:
            self.written.append(piece)
            stream.pauseProducing()

        stream = self.stream([b"a", b"b"], write)
        stream.start()
        self.turn()
        self.assertEqual(self.clock.calls, [])
        stream.resumeProducing()
        self.turn()
        self.assertEqual(self.written, [b"a", b"b"])

    def test_stop(self) -> None:
        """A stopped stream writes nothing more and never calls done."""
        stream = self.stream([b"a", b"b"])
        stream.start()
        self.turn()
        stream.stopProducing()
        stream.resumeProducing()
        self.assertEqual(self.clock.calls, [])
        self.assertEqual(self.written, [b"a"])
        self.assertEqual(self.done, [])


class JoinPiecesTests(SynchronousTestCase):
    """join_pieces joins a large argument's pieces as exact bytes, its CRC remembered on request."""

    def tearDown(self) -> None:
        checksums.forget()

    def test_memoryview_pieces_become_bytes(self) -> None:
        """Pieces that are memoryviews (the parser's cut ends) are joined as bytes.

        bytes.join keeps the GIL for the whole copy when a piece is not exact bytes: a
        512 MB SET held the reactor for 0.3-1.7 s in that copy.
        """
        parts = [b"ab", memoryview(b"xcdx")[1:3], b"ef"]
        value = streaming.join_pieces(parts)
        self.assertEqual((value, value.__class__), (b"abcdef", bytes))
        self.assertEqual(streaming.joinable(parts), [b"ab", b"cd", b"ef"])
        self.assertEqual({part.__class__ for part in streaming.joinable(parts)}, {bytes})

    def test_checksum_is_remembered(self) -> None:
        """With checksum, the joined value's CRC-32 is remembered for the journal's record."""
        value = streaming.join_pieces([b"ab", b"cd"], checksum=True)
        self.assertIs(checksums._known[0], value)
        self.assertEqual(checksums._known[1], zlib.crc32(b"abcd"))
        streaming.join_pieces([b"ab", b"cd"])
        self.assertIs(checksums._known[0], value)  # without checksum: left as it was
