"""Tests of finding the Redis test suite and of fetching it from a release tarball."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.redis_suite.source import extract_tests, fetch, file_sha256, is_suite, locate


def make_tarball(path: str) -> None:
    """A tarball shaped like redis-7.0.15.tar.gz: tests/, COPYING, src/ and a symlink."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("redis-7.0.15/tests/test_helper.tcl", b"puts hi\n"),
                           ("redis-7.0.15/tests/unit/x.tcl", b"test x {} {}\n"),
                           ("redis-7.0.15/COPYING", b"BSD\n"),
                           ("redis-7.0.15/src/server.c", b"int main;\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("redis-7.0.15/tests/evil")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)


class SourceTests(SynchronousTestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        self.tarball = os.path.join(self.root, "redis.tar.gz")
        make_tarball(self.tarball)

    def test_extract_tests(self):
        """Only tests/ and COPYING are extracted, links left out."""
        target = os.path.join(self.root, "out")
        extract_tests(self.tarball, target)
        found = sorted(os.path.relpath(os.path.join(where, name), target)
                       for where, _, names in os.walk(target) for name in names)
        self.assertEqual(found, ["COPYING", "tests/test_helper.tcl", "tests/unit/x.tcl"])
        self.assertTrue(is_suite(target))

    def test_fetch_checks_the_digest(self):
        """A download whose SHA-256 matches is extracted into the target; one that does not
        is refused and leaves nothing."""
        url = "file://" + self.tarball
        target = os.path.join(self.root, "cache", "suite")
        self.assertRaises(SystemExit, fetch, target, url, "0" * 64)
        self.assertFalse(os.path.exists(target))
        self.assertEqual(fetch(target, url, file_sha256(self.tarball)), target)
        self.assertTrue(is_suite(target))
        self.assertEqual(os.listdir(os.path.dirname(target)), ["suite"])

    def test_locate_given(self):
        """A directory given is used when it holds a suite and refused when it does not."""
        extract_tests(self.tarball, os.path.join(self.root, "given"))
        self.assertEqual(locate(os.path.join(self.root, "given"), False),
                         os.path.join(self.root, "given"))
        self.assertRaises(SystemExit, locate, self.root, False)
