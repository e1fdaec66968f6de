"""Tests for kvtwist.storage.journalproc: the writer process's pipe framing and request handling."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.storage import datadir, records
from kvtwist.storage.datadir import FileOps
from kvtwist.storage.journalproc import (
    APPEND, APPEND_NOSYNC, CLOSE, ERROR, OK, RESUME, ROTATE, SYNC, Child, FrameError, FrameParser,
    FreshReads, ReadBuffers, decode_size, encode, encode_size, pack_size, serve)
from tests.procs import ROOT

KINDS = (APPEND, APPEND_NOSYNC, SYNC, ROTATE, CLOSE, RESUME, OK, ERROR)


def reader(chunks: list, used=None):
    """Return a ``readinto(buffer)`` that copies the next of ``chunks`` into the buffer
    (each must fit) and returns its length, 0 once they are all read; it appends each
    buffer it was given to ``used``."""
    def readinto(buffer) -> int:
        if used is not None:
            used.append(buffer)
        if not chunks:
            return 0
        chunk = chunks.pop(0)
        assert len(chunk) <= len(buffer), "a chunk larger than the read buffer"
        buffer[:len(chunk)] = chunk
        return len(chunk)
    return readinto


def new_journal(case) -> tuple:
    """Return ``(directory, path)`` of an empty journal-1 in a directory ``case`` removes."""
    directory = tempfile.mkdtemp()
    case.addCleanup(shutil.rmtree, directory, True)
    path = datadir.journal_path(directory, 1)
    with open(path, "wb") as f:
        f.write(records.encode_header(records.JOURNAL, 1))
    return directory, path


class FrameTests(SynchronousTestCase):
    """Frames are a kind byte, a 4-byte length and the payload, parsed push-style."""

    FRAMES = [(APPEND, b"\x01record"), (SYNC, b""), (OK, pack_size(1234)), (ERROR, b"disk\r\n")]

    def wire(self) -> bytes:
        return b"".join(encode(kind, payload) for kind, payload in self.FRAMES)

    def test_bytes(self) -> None:
        """A frame is its kind, its payload length big-endian, then the payload."""
        self.assertEqual(encode(APPEND, b"xy"), b"A\x00\x00\x00\x02xy")
        self.assertEqual(encode_size(OK, 258), b"K\x00\x00\x00\x08" + b"\x00" * 6 + b"\x01\x02")

    def test_whole(self) -> None:
        """Frames fed in one piece come out in order."""
        self.assertEqual(FrameParser().feed(self.wire()), self.FRAMES)

    def test_byte_by_byte(self) -> None:
        """Frames fed one byte at a time come out the same, each once complete."""
        parser = FrameParser()
        frames = []
        for index in range(len(self.wire())):
            frames.extend(parser.feed(self.wire()[index:index + 1]))
        self.assertEqual(frames, self.FRAMES)
        self.assertEqual(parser.pending, 0)

    def test_trailing_partial_frame_is_held(self) -> None:
        """Bytes of an unfinished frame wait for the rest instead of being dropped."""
        parser = FrameParser()
        tail = encode(APPEND, b"\x01abc")
        self.assertEqual(parser.feed(self.wire() + tail[:6]), self.FRAMES)
        self.assertEqual(parser.pending, 6)
        self.assertEqual(parser.feed(tail[6:]), [(APPEND, b"\x01abc")])

    def test_fed_views_are_not_kept_past_their_feed(self) -> None:
        """A frame head cut across two reads is copied: the buffer it was read into may be
        read into again before the rest of the head arrives."""
        parser = FrameParser()
        buffer = bytearray(encode(APPEND, b"xyz")[:3])
        self.assertEqual(parser.feed(memoryview(buffer)), [])
        buffer[:] = b"\xff\xff\xff"
        self.assertEqual(parser.feed(memoryview(bytearray(encode(APPEND, b"xyz")[3:]))),
                         [(APPEND, b"xyz")])

    def test_holding(self) -> None:
        """``holding`` is the pieces of the unfinished payload (what must not be read over)."""
        parser = FrameParser(keep_pieces=True)
        wire = encode(APPEND, b"abcdef")
        first, second = memoryview(bytearray(wire[:8])), memoryview(bytearray(wire[8:]))
        parser.feed(first)
        self.assertEqual([bytes(piece) for piece in parser.holding()], [b"abc"])
        self.assertIs(parser.holding()[0].obj, first.obj)
        self.assertEqual(parser.feed(second)[0][0], APPEND)
        self.assertEqual(parser.holding(), [])

    def test_unknown_kind(self) -> None:
        """A byte that starts no known frame is an error naming its offset, not a guess."""
        error = self.assertRaises(FrameError, FrameParser().feed, encode(OK) + b"Z\x00\x00\x00\x00")
        self.assertIn("at byte 5", str(error))

    def test_large_payload_is_not_recopied_per_chunk(self) -> None:
        """The pieces of an unfinished payload are held as fed and joined once at its end.

        Before: every feed copied the whole held buffer (``self._buffer + data``), so a
        64 MB append fed in 64 kB reads copied 32 GB and stalled the writer for seconds.
        """
        parser = FrameParser()
        pieces = [bytes([n]) * 1000 for n in range(50)]
        head = encode(APPEND, b"".join(pieces))[:5]
        self.assertEqual(parser.feed(head), [])
        for piece in pieces[:-1]:
            self.assertEqual(parser.feed(piece), [])
        self.assertEqual(parser.pending, 5 + 49 * 1000)
        held = parser._pieces
        self.assertTrue(all(a is b for a, b in zip(held, pieces)), "pieces were copied")
        self.assertEqual(parser.feed(pieces[-1] + encode(SYNC)),
                         [(APPEND, b"".join(pieces)), (SYNC, b"")])
        self.assertEqual(parser.pending, 0)

    def test_kept_pieces_are_not_joined(self) -> None:
        """With keep_pieces, an append's payload fed in pieces is handed on as those pieces.

        The writer then writes them as they are: before, it joined a 512 MB record into one
        more copy (0.35 s idle, 3 s under load) before writing it.
        """
        parser = FrameParser(keep_pieces=True)
        pieces = [bytes([n]) * 1000 for n in range(5)]
        self.assertEqual(parser.feed(encode(APPEND, b"".join(pieces))[:5]), [])
        for piece in pieces[:-1]:
            self.assertEqual(parser.feed(piece), [])
        [(kind, payload)] = parser.feed(pieces[-1])
        self.assertEqual(kind, APPEND)
        self.assertIsInstance(payload, list)
        self.assertTrue(all(a is b for a, b in zip(payload, pieces)), "pieces were copied")
        # Other frames, and a payload that came whole, are bytes as without keep_pieces.
        self.assertEqual(parser.feed(encode(APPEND, b"whole") + encode(OK, b"ok")),
                         [(APPEND, b"whole"), (OK, b"ok")])
        self.assertEqual(parser.feed(encode(ROTATE, b"12345678")[:7]), [])
        self.assertEqual(parser.feed(b"345678"), [(ROTATE, b"12345678")])

    def test_decode_size(self) -> None:
        """A size payload is exactly 8 bytes."""
        self.assertEqual(decode_size(pack_size(2**40 + 7)), 2**40 + 7)
        self.assertRaises(ValueError, decode_size, b"\x00" * 7)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(KINDS), st.binary(max_size=300))),
           st.integers(min_value=1, max_value=50))
    def test_round_trip(self, frames, step) -> None:
        """Any frames, cut anywhere, parse back to themselves."""
        wire = b"".join(encode(kind, payload) for kind, payload in frames)
        parser = FrameParser()
        out = []
        for index in range(0, len(wire), step):
            out.extend(parser.feed(wire[index:index + step]))
        self.assertEqual(out, frames)


class NoSpaceOps(FileOps):
    """Real file operations whose writes fail with ENOSPC (after writing half) while ``full``."""

    full = False

    def __init__(self) -> None:
        self.calls = []

    def fsync(self, fd):
        self.calls.append("fsync")
        FileOps.fsync(self, fd)

    def write(self, fd, data, offset):
        self.calls.append("write")
        if self.full:
            FileOps.write(self, fd, data[: len(data) // 2], offset)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        FileOps.write(self, fd, data, offset)


class ChildTests(SynchronousTestCase):
    """Child carries out append, sync, rotate and close on a real journal file."""

    def setUp(self) -> None:
        self.dir, self.path = new_journal(self)
        self.ops = NoSpaceOps()
        self.child = Child(self.ops, self.dir, self.path, records.HEADER_SIZE, 1)
        self.addCleanup(self._close)

    def _close(self) -> None:
        if not self.child.closed:
            self.child.handle(CLOSE, b"")

    def contents(self, path=None) -> bytes:
        with open(path or self.path, "rb") as f:
            return f.read()[records.HEADER_SIZE:]

    def test_append(self) -> None:
        """An append writes the records at the good length and answers the new length."""
        reply = self.child.handle(APPEND, b"first")
        self.assertEqual(reply, encode_size(OK, records.HEADER_SIZE + 5))
        self.child.handle(APPEND_NOSYNC, b"second")
        self.assertEqual(self.contents(), b"firstsecond")

    def test_sync_reports_whether_there_was_anything(self) -> None:
        """A sync after an unsynced append answers 1, and 0 when nothing is left to sync."""
        self.child.handle(APPEND_NOSYNC, b"x")
        self.assertEqual(self.child.handle(SYNC, b""), encode(OK, b"\x01"))
        self.assertEqual(self.child.handle(SYNC, b""), encode(OK, b"\x00"))

    def test_rotate(self) -> None:
        """A rotation starts journal-<generation> with its header; later appends go there."""
        self.child.handle(APPEND, b"old")
        reply = self.child.handle(ROTATE, pack_size(2))
        self.assertEqual(reply, encode_size(OK, records.HEADER_SIZE))
        self.child.handle(APPEND, b"new")
        new_path = datadir.journal_path(self.dir, 2)
        self.assertEqual(self.contents(), b"old")
        self.assertEqual(self.contents(new_path), b"new")
        with open(new_path, "rb") as f:
            self.assertEqual(f.read(records.HEADER_SIZE),
                             records.encode_header(records.JOURNAL, 2))

    def test_failed_append_is_an_error_and_leaves_the_good_length(self) -> None:
        """A full disk answers an error naming the file, and the half-written bytes are cut."""
        self.child.handle(APPEND, b"kept")
        self.ops.full = True
        kind, payload = FrameParser().feed(self.child.handle(APPEND, b"lost-record"))[0]
        self.assertEqual(kind, ERROR)
        self.assertIn(self.path, payload.decode())
        self.assertIn("No space left", payload.decode())
        self.assertEqual(self.contents(), b"kept")
        self.ops.full = False
        self.child.handle(RESUME, b"")
        self.child.handle(APPEND, b"again")
        self.assertEqual(self.contents(), b"keptagain")

    def test_appends_after_a_failed_one_are_refused_until_resume(self) -> None:
        """Appends sent behind a failed one are refused even once the disk works, until RESUME."""
        self.ops.full = True
        self.child.handle(APPEND, b"failed")
        self.ops.full = False
        kind, payload = FrameParser().feed(self.child.handle(APPEND_NOSYNC, b"later"))[0]
        self.assertEqual(kind, ERROR)
        self.assertIn("an earlier append failed", payload.decode())
        self.assertIn("No space left", payload.decode())
        self.assertEqual(self.contents(), b"")
        self.assertEqual(self.child.handle(RESUME, b""), encode(OK))
        self.assertEqual(self.child.handle(APPEND, b"failedlater"),
                         encode_size(OK, records.HEADER_SIZE + 11))
        self.assertEqual(self.contents(), b"failedlater")

    def test_appends_read_together_are_one_group_commit(self) -> None:
        """Consecutive appends handled together are one write and one fsync, each answered."""
        del self.ops.calls[:]
        frames = [(APPEND, b"ab"), (APPEND_NOSYNC, b"c"), (APPEND, b"def"), (SYNC, b""),
                  (APPEND_NOSYNC, b"g"), (APPEND_NOSYNC, b"h")]
        replies = self.child.handle_all(frames)
        base = records.HEADER_SIZE
        self.assertEqual(replies, [encode_size(OK, base + 2), encode_size(OK, base + 3),
                                   encode_size(OK, base + 6), encode(OK, b"\x00"),
                                   encode_size(OK, base + 7), encode_size(OK, base + 8)])
        self.assertEqual(self.ops.calls, ["write", "fsync", "write"])
        self.assertEqual(self.contents(), b"abcdefgh")

    def test_appends_in_pieces(self) -> None:
        """Appends whose payloads are lists of pieces are written as their joined bytes."""
        replies = self.child.handle_all([(APPEND, [b"ab", b"cd"]), (APPEND_NOSYNC, b"e"),
                                         (APPEND, [b"f", b"gh"])])
        base = records.HEADER_SIZE
        self.assertEqual(replies, [encode_size(OK, base + 4), encode_size(OK, base + 5),
                                   encode_size(OK, base + 8)])
        self.assertEqual(self.contents(), b"abcdefgh")

    def test_a_failed_group_commit_fails_each_append(self) -> None:
        """When the merged write fails, every append in it is answered with the error."""
        self.child.handle(APPEND, b"kept")
        self.ops.full = True
        replies = FrameParser().feed(b"".join(
            self.child.handle_all([(APPEND, b"one"), (APPEND, b"two"), (SYNC, b"")])))
        self.assertEqual([kind for kind, _ in replies], [ERROR, ERROR, OK])
        self.assertEqual(self.contents(), b"kept")

    def test_opening_cuts_what_follows_the_good_length(self) -> None:
        """A writer started after one that died mid-write first cuts the torn bytes off."""
        self.child.handle(APPEND, b"good")
        with open(self.path, "ab") as f:
            f.write(b"torn-by-a-dead-writer")
        again = Child(FileOps(), self.dir, self.path, records.HEADER_SIZE + 4, 1)
        again.handle(APPEND, b"next")
        again.handle(CLOSE, b"")
        self.assertEqual(self.contents(), b"goodnext")

    def test_close(self) -> None:
        """Close answers OK and marks the child done."""
        self.assertEqual(self.child.handle(CLOSE, b""), encode(OK))
        self.assertTrue(self.child.closed)

    def test_reply_kind_as_request(self) -> None:
        """A reply kind sent as a request means the ends disagree: FrameError, not a write."""
        self.assertRaises(FrameError, self.child.handle, OK, b"")

    def test_serve_answers_a_burst_in_one_write(self) -> None:
        """Requests read together are answered by one write, and serving ends at end of input."""
        reads = [encode(APPEND, b"\x01a") + encode(APPEND_NOSYNC, b"b") + encode(SYNC)[:3],
                 encode(SYNC)[3:]]
        writes = []
        serve(self.child, reader(reads), writes.append)
        self.assertEqual(len(writes), 2)
        frames = FrameParser().feed(b"".join(writes))
        base = records.HEADER_SIZE
        # The two appends were one fsynced write, so the sync found nothing left to do.
        self.assertEqual(frames, [(OK, pack_size(base + 2)), (OK, pack_size(base + 3)),
                                  (OK, b"\x00")])
        self.assertEqual(self.contents(), b"\x01ab")

    def test_serve_with_fresh_reads(self) -> None:
        """With FreshReads (PyPy's writer) ``read(n)`` is called for up to n new bytes each time."""
        reads = [encode(APPEND, b"\x01a") + encode(APPEND, b"bc")[:4], encode(APPEND, b"bc")[4:],
                 b""]
        asked, writes = [], []

        def read(n: int) -> bytes:
            asked.append(n)
            return reads.pop(0)
        serve(self.child, read, writes.append, FreshReads(size=64))
        self.assertEqual(asked, [64, 64, 64])
        self.assertEqual(self.contents(), b"\x01abc")
        self.assertEqual(len(FrameParser().feed(b"".join(writes))), 2)

    def test_serve_writes_a_large_append_while_it_is_read(self) -> None:
        """What has arrived of an append still being read is written before the rest is read,
        and the append is fsynced once, when complete.

        Before: a large record was written only once all of it had come down the pipe, so
        its write (10-50 ms for 16 MB here) came after the pipe's transfer instead of
        during it, and every small write behind it waited for both.
        """
        self.child.write_ahead_min = 8
        wire = encode(APPEND, b"0123456789" * 4) + encode(APPEND_NOSYNC, b"z")
        chunks = [wire[index:index + 16] for index in range(0, len(wire), 16)]
        seen = []

        def read_and_look(buffer) -> int:
            seen.append(len(self.contents()))
            return feed(buffer)
        feed = reader(chunks)
        del self.ops.calls[:]
        writes = []
        serve(self.child, read_and_look, writes.append, ReadBuffers(size=16))
        self.assertEqual(self.contents(), b"0123456789" * 4 + b"z")
        # Before the read completing the append, its first 11 and 27 bytes were on file.
        self.assertEqual(seen, [0, 11, 27, 40, 41])
        self.assertEqual(self.ops.calls, ["write", "write", "write", "fsync", "write"])
        base = records.HEADER_SIZE
        self.assertEqual(FrameParser().feed(b"".join(writes)),
                         [(OK, pack_size(base + 40)), (OK, pack_size(base + 41))])

    def test_small_unfinished_appends_are_not_written_ahead(self) -> None:
        """Less than ``write_ahead_min`` of an unfinished append is left for its one write."""
        wire = encode(APPEND, b"0123456789" * 4)
        del self.ops.calls[:]
        serve(self.child, reader([wire[:20], wire[20:]]), lambda data: None)
        self.assertEqual(self.ops.calls, ["write", "fsync"])
        self.assertEqual(self.contents(), b"0123456789" * 4)

    def test_a_failed_write_ahead_fails_its_append(self) -> None:
        """A full disk during a write ahead answers the append with the error, leaves the good
        length, and refuses later appends until RESUME."""
        self.child.handle(APPEND, b"kept")
        self.child.write_ahead_min = 4
        self.ops.full = True
        wire = encode(APPEND, b"0123456789") + encode(APPEND, b"with-it")
        writes = []
        serve(self.child, reader([wire[:10], wire[10:]]), writes.append)
        replies = FrameParser().feed(b"".join(writes))
        self.assertEqual([kind for kind, _ in replies], [ERROR, ERROR])
        self.assertTrue(replies[0][1].decode().startswith("No space left"))
        self.assertEqual(replies[1], replies[0])
        self.assertEqual(self.contents(), b"kept")
        self.ops.full = False
        kind, payload = FrameParser().feed(self.child.handle(APPEND, b"later"))[0]
        self.assertIn("an earlier append failed", payload.decode())
        self.child.handle(RESUME, b"")
        self.child.handle(APPEND, b"again")
        self.assertEqual(self.contents(), b"keptagain")

    def test_an_append_cut_short_is_a_torn_tail_recovery_drops(self) -> None:
        """When the server dies during an append written ahead, recovery keeps the records
        before it and cuts the rest as a torn tail."""
        from tests.storage.test_journal import FakeKeyspace

        self.child.write_ahead_min = 8
        first = records.encode_effect((records.SET, b"a", b"1", 0))
        large = records.encode_effect((records.SET, b"b", b"2" * 100, 0))
        wire = encode(APPEND, first) + encode(APPEND, large)
        serve(self.child, reader([wire[:60], wire[60:90]]), lambda data: None)
        self.assertGreater(len(self.contents()), len(first))  # some of it was written ahead
        loaded = FakeKeyspace()
        result = datadir.load(self.dir, loaded.apply)
        self.assertEqual(loaded.state.data, {b"a": (b"1", 0)})
        self.assertTrue(result.torn)

    def test_serve_stops_after_close(self) -> None:
        """After CLOSE nothing more is read."""
        reads = [encode(CLOSE), encode(SYNC)]
        writes = []
        serve(self.child, reader(reads), writes.append)
        self.assertEqual(writes, [encode(OK)])
        self.assertEqual(reads, [encode(SYNC)])

    def test_serve_reuses_its_read_buffers(self) -> None:
        """Once what was read into a buffer is written, the next reads go into it again.

        Before: each read made a fresh 1 MB bytes, whose pages the kernel had to fault in
        (4,100 faults and about half the writer's CPU for a 16 MB record).
        """
        wire = encode(APPEND, b"a" * 20) + encode(APPEND, b"b" * 20)
        used = []
        buffers = ReadBuffers(size=8, keep=8)
        serve(self.child, reader([wire[index:index + 8] for index in range(0, len(wire), 8)],
                                 used), lambda data: None, buffers)
        self.assertEqual(self.contents(), b"a" * 20 + b"b" * 20)
        # Seven 8-byte reads (and one finding the end of input) into four buffers: a read
        # reuses any buffer but the one holding the start of the second frame's payload.
        self.assertEqual(buffers.allocated, 4)
        self.assertEqual(len(used), 8)
        self.assertEqual(len({id(buffer) for buffer in used}), 4)

    def test_serve_never_reads_over_an_unfinished_payload(self) -> None:
        """A buffer holding part of a payload still being read is not read into again,
        even when a frame read with it was written meanwhile."""
        wire = encode(APPEND, b"a") + encode(APPEND, b"0123456789abcdefghij") + encode(SYNC)
        used = []
        buffers = ReadBuffers(size=12, keep=8)
        serve(self.child, reader([wire[index:index + 12] for index in range(0, len(wire), 12)],
                                 used), lambda data: None, buffers)
        self.assertEqual(self.contents(), b"a0123456789abcdefghij")
        # The second frame's payload starts in the first read (after the first frame,
        # written at once) and ends in the third: those buffers stay apart until it is
        # written; the read that finds the end of input reuses one of them.
        self.assertEqual(len({id(buffer) for buffer in used[:3]}), 3)
        self.assertIn(id(used[3]), {id(buffer) for buffer in used[:3]})


class ReadBuffersTests(SynchronousTestCase):
    """ReadBuffers: read buffers handed out, held while viewed, and kept for reuse."""

    def test_read_returns_a_view_of_what_was_read(self) -> None:
        """``read`` reads into a buffer of its size and returns a view of the bytes read."""
        buffers = ReadBuffers(size=16, keep=2)
        view = buffers.read(reader([b"hello"]))
        self.assertEqual(bytes(view), b"hello")
        self.assertEqual(len(view.obj), 16)
        self.assertEqual(bytes(buffers.read(reader([]))), b"")

    def test_release_keeps_what_is_held_and_at_most_keep_free(self) -> None:
        """Released buffers are reused (at most ``keep`` of them); held ones are not."""
        buffers = ReadBuffers(size=4, keep=2)
        views = [buffers.read(reader([b"abcd"])) for _ in range(4)]
        buffers.release([views[3][1:]])
        self.assertEqual(buffers.allocated, 4)
        again = [buffers.read(reader([b"wxyz"])).obj for _ in range(3)]
        self.assertEqual(buffers.allocated, 5)  # two were kept free, a third is new
        self.assertNotIn(views[3].obj, again)
        self.assertEqual(bytes(views[3]), b"abcd")


class ProcessTests(SynchronousTestCase):
    """``python -m kvtwist.storage.journalproc`` as a real process on pipes."""

    def setUp(self) -> None:
        self.dir, self.path = new_journal(self)
        env = dict(os.environ, PYTHONPATH=ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kvtwist.storage.journalproc", self.dir, self.path,
             str(records.HEADER_SIZE), "1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.addCleanup(self._reap)

    def _reap(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()

    def ask(self, kind: bytes, payload: bytes = b"") -> tuple:
        self.proc.stdin.write(encode(kind, payload))
        self.proc.stdin.flush()
        parser = FrameParser()
        while True:
            frames = parser.feed(os.read(self.proc.stdout.fileno(), 4096))
            if frames:
                return frames[0]

    def test_append_then_exit_on_end_of_input(self) -> None:
        """It appends, answers the new length, and exits 0 when its input closes."""
        self.assertEqual(self.ask(APPEND, b"rec"), (OK, pack_size(records.HEADER_SIZE + 3)))
        self.proc.stdin.close()
        self.assertEqual(self.proc.wait(timeout=30), 0)
        with open(self.path, "rb") as f:
            self.assertEqual(f.read()[records.HEADER_SIZE:], b"rec")

    def test_ignores_terminal_and_group_signals(self) -> None:
        """SIGINT and SIGTERM (a Ctrl-C or a signal to the whole group) do not stop it."""
        self.assertEqual(self.ask(APPEND, b"a")[0], OK)  # the handlers are in place by now
        self.proc.send_signal(signal.SIGINT)
        self.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.ask(APPEND, b"b"), (OK, pack_size(records.HEADER_SIZE + 2)))
        self.assertEqual(self.ask(CLOSE), (OK, b""))
        self.assertEqual(self.proc.wait(timeout=30), 0)

    def test_loads_no_twisted(self) -> None:
        """The writer process imports only the standard library and kvtwist's pure modules."""
        proc = subprocess.run(
            [sys.executable, "-c", "import sys, kvtwist.storage.journalproc; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'twisted'))"],
            capture_output=True, env=dict(os.environ, PYTHONPATH=ROOT), timeout=60)
        self.assertEqual(proc.stdout.strip(), b"[]")

    def test_unopenable_journal(self) -> None:
        """A journal it cannot open makes it exit 1 with the reason on stderr."""
        proc = subprocess.run(
            [sys.executable, "-m", "kvtwist.storage.journalproc", self.dir,
             os.path.join(self.dir, "missing", "journal-1.kvj"), "20", "1"],
            stdin=subprocess.DEVNULL, capture_output=True, env=dict(os.environ, PYTHONPATH=ROOT),
            timeout=60)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"cannot open", proc.stderr)
        self.assertIn(b"No such file", proc.stderr)
