"""Tests for kvtwist.storage.writer: the journal file operations (append, fsync, reopen, rotate)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.storage import datadir, records, writer
from kvtwist.storage.datadir import FileOps, JournalError
from kvtwist.storage.writer import LogFile


class FailingOps(FileOps):
    """Real file operations; the named ones raise ENOSPC (a write first stores half its data)."""

    def __init__(self) -> None:
        self.failing = set()

    def _check(self, name: str) -> None:
        if name in self.failing:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def write(self, fd, data, offset):
        if "write" in self.failing:
            FileOps.write(self, fd, data[: len(data) // 2], offset)
        self._check("write")
        FileOps.write(self, fd, data, offset)

    def fsync(self, fd):
        self._check("fsync")
        FileOps.fsync(self, fd)

    def truncate(self, fd, size):
        self._check("truncate")
        FileOps.truncate(self, fd, size)

    def open(self, path):
        self._check("open")
        return FileOps.open(self, path)

    def fsync_dir(self, directory):
        self._check("fsync_dir")
        FileOps.fsync_dir(self, directory)


class LogFileTests(SynchronousTestCase):
    """LogFile appends at its good length and never leaves a torn record before good ones."""

    def setUp(self) -> None:
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.ops = FailingOps()
        path = datadir.journal_path(self.dir, 1)
        fd = self.ops.open(path)
        header = records.encode_header(records.JOURNAL, 1)
        self.ops.write(fd, header, 0)
        self.file = LogFile(self.ops, path, fd, len(header), 1)
        self.addCleanup(self._close)

    def _close(self) -> None:
        try:
            os.close(self.file.fd)
        except OSError:
            pass

    def contents(self) -> bytes:
        with open(self.file.path, "rb") as f:
            return f.read()

    def test_append_returns_new_size(self) -> None:
        """append writes at the good length, returns the new one; without fsync it is unsynced."""
        size = self.file.append(b"abc", fsync=True)
        self.assertEqual(size, records.HEADER_SIZE + 3)
        self.assertFalse(self.file.unsynced)
        self.assertEqual(self.file.append(b"de", fsync=False), records.HEADER_SIZE + 5)
        self.assertTrue(self.file.unsynced)
        self.assertEqual(self.contents()[records.HEADER_SIZE:], b"abcde")
        self.assertTrue(self.file.sync())
        self.assertFalse(self.file.sync())

    def test_failed_write_is_cut_back(self) -> None:
        """A failed write raises JournalError naming the file and leaves it at its good length."""
        self.file.append(b"good", fsync=True)
        self.ops.failing.add("write")
        exc = self.assertRaises(JournalError, self.file.append, b"x" * 100, True)
        self.assertIn(self.file.path, str(exc))
        self.assertIn(os.strerror(errno.ENOSPC), str(exc))
        self.assertEqual(self.contents()[records.HEADER_SIZE:], b"good")
        self.assertFalse(self.file.dirty)

    def test_dirty_file_truncated_before_next_write(self) -> None:
        """When cutting back fails too, the next append truncates the leftover bytes first."""
        self.ops.failing.update(("write", "truncate"))
        self.assertRaises(JournalError, self.file.append, b"x" * 100, True)
        self.assertTrue(self.file.dirty)
        self.ops.failing.clear()
        self.file.append(b"ok", fsync=True)
        self.assertEqual(self.contents()[records.HEADER_SIZE:], b"ok")
        self.assertFalse(self.file.dirty)

    def test_write_ahead_then_append(self) -> None:
        """Bytes written ahead stay past the good length until the append that follows them."""
        self.file.append(b"good", fsync=True)
        self.file.write_ahead([b"ab", b"cd"], 0)
        self.file.write_ahead([b"e"], 4)
        self.assertEqual(self.file.size, records.HEADER_SIZE + 4)
        self.assertEqual(self.file.append([b"f", b"g"], True, ahead=5), records.HEADER_SIZE + 11)
        self.assertEqual(self.contents()[records.HEADER_SIZE:], b"goodabcdefg")

    def test_failed_write_ahead_is_cut_back(self) -> None:
        """A failed write ahead raises JournalError naming the file and cuts what it wrote."""
        self.file.append(b"good", fsync=True)
        self.file.write_ahead([b"abcd"], 0)
        self.ops.failing.add("write")
        exc = self.assertRaises(JournalError, self.file.write_ahead, [b"x" * 100], 4)
        self.assertIn(self.file.path, str(exc))
        self.assertEqual(self.contents()[records.HEADER_SIZE:], b"good")
        self.assertEqual(self.file.size, records.HEADER_SIZE + 4)

    def test_failed_sync_stays_unsynced(self) -> None:
        """A failed fsync raises JournalError and keeps the data marked unsynced for the retry."""
        self.file.append(b"abc", fsync=False)
        self.ops.failing.add("fsync")
        self.assertRaises(JournalError, self.file.sync)
        self.assertTrue(self.file.unsynced)
        self.ops.failing.clear()
        self.assertTrue(self.file.sync())

    def test_rotate(self) -> None:
        """rotate returns a new empty journal with its header and closes the old one."""
        self.file.append(b"abc", fsync=False)
        new = writer.rotate(self.ops, self.file, self.dir, 2)
        self.addCleanup(os.close, new.fd)
        self.assertEqual((new.generation, new.size), (2, records.HEADER_SIZE))
        with open(new.path, "rb") as f:
            self.assertEqual(records.decode_header(f.read()), records.Header(records.JOURNAL, 2))
        self.assertFalse(self.file.unsynced)
        self.assertRaises(OSError, os.fstat, self.file.fd)

    def test_rotate_failure_keeps_old(self) -> None:
        """A rotation that cannot sync the directory raises JournalError, removing the new file."""
        self.ops.failing.add("fsync_dir")
        exc = self.assertRaises(JournalError, writer.rotate, self.ops, self.file, self.dir, 2)
        self.assertIn("journal-2", str(exc))
        self.assertFalse(os.path.exists(datadir.journal_path(self.dir, 2)))
        self.assertEqual(self.file.append(b"still", fsync=True), records.HEADER_SIZE + 5)
